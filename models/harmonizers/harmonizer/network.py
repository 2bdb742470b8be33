"""The filter-argument network of Harmonizer (Ke et al., ECCV 2022), §3.2 "Architecture".

A backbone encodes the composite and its mask at 256×256; a cascade regressor turns
the pooled features into six image-level filter arguments. The white-box filters
that apply them live elsewhere. The layout reproduces the official code so that
the user's ``harmonizer.pth`` loads strictly (its 392 keys, 4,726,882 parameters).

Where the official code differs from the paper, we follow the code:

* Backbone: the paper says EfficientNet-B0; the code replaces its RGB stem with
  two 4-channel stems (composite + mask, composite + inverted mask) of 16 channels
  each, uses TF-"SAME" padding, and feeds raw [0,1] values (no ImageNet normalisation).
* Features: the paper's Z has 160 channels; in the code the 1280-channel head
  output is pooled and projected to 160 by the regressor's ``f``/``g`` layers.
* Regressor: the paper bounds θ to [-1, 1]; the code has no activation at all
  (the cascade is purely affine) and clamps to [-1, 1] only when a filter runs.
  Each step concatenates ``f`` with the previous step's 160-d feature.
* Order: the paper lists brightness first; the code's heads are, in order,
  temperature, brightness, contrast, saturation, highlight, shadow (``FILTERS``).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.checkpoint import load_state_dict_file, load_strict
from models.ops.efficientnet import B0, EfficientNetConfig, EfficientNetTrunk

FILTERS = ("temperature", "brightness", "contrast", "saturation", "highlight", "shadow")
INPUT_SIZE = 256


def resize_for_network(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize N×C×H×W to size×size like the official code (bilinear, no antialias).

    The aspect ratio is not kept, and downscaling from 1080p aliases: this is what
    the official weights were trained and evaluated with.
    """
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


class TwoStemBackbone(EfficientNetTrunk):
    """EfficientNet trunk fed by two 4-channel stems: [RGB, m] and [RGB, 1−m].

    Each stem yields half of the trunk's stem channels; their outputs are
    concatenated in the order [fg, bg].
    """

    def __init__(self, cfg: EfficientNetConfig = B0) -> None:
        super().__init__(cfg)
        half = cfg.stem_channels // 2
        self._conv_fg, self._bn_fg = self.make_stem(4, half)
        self._conv_bg, self._bn_bg = self.make_stem(4, half)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        fg = self.stem(self._conv_fg, self._bn_fg, torch.cat((image, mask), dim=1))
        bg = self.stem(self._conv_bg, self._bn_bg, torch.cat((image, 1.0 - mask), dim=1))
        return self.features(torch.cat((fg, bg), dim=1))


class CascadeArgumentRegressor(nn.Module):
    """Pooled features → one argument per filter, each step conditioned on the previous.

    ``g_0 = g(p)``; for step i: ``g_i = headers[i][0]([f(p), g_{i-1}])`` and
    ``arg_i = headers[i][1](g_i)``. Linear throughout (official code); output N×k.
    """

    def __init__(self, in_features: int = 1280, hidden: int = 160, out_per_step: int = 1,
                 steps: int = len(FILTERS)) -> None:
        super().__init__()
        self.f = nn.Linear(in_features, hidden)
        self.g = nn.Linear(in_features, hidden)
        self.headers = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Linear(hidden, out_per_step))
            for _ in range(steps))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        f = self.f(pooled)
        g = self.g(pooled)
        args = []
        for to_hidden, to_argument in self.headers:
            g = to_hidden(torch.cat((f, g), dim=1))
            args.append(to_argument(g))
        return torch.cat(args, dim=1)


class HarmonizerNet(nn.Module):
    """Official Harmonizer argument network: ``backbone`` (B0, two stems) + ``regressor``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = TwoStemBackbone(B0)
        self.regressor = CascadeArgumentRegressor(B0.head_channels)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> HarmonizerNet:
        """Build the network from the official ``harmonizer.pth`` or our ``.safetensors``.

        Raises :class:`models.ops.checkpoint.CheckpointError` (a ``ValueError``) with
        one sentence when the file cannot be read or does not fit. Returns the
        network in eval mode.
        """
        net = cls()
        load_strict(net, load_state_dict_file(path, "Harmonizer checkpoint"), "Harmonizer network", path)
        return net.eval()

    def forward(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw arguments (N×6, ``FILTERS`` order, unbounded) for inputs already at 256²."""
        features = self.backbone(composite, mask)
        return self.regressor(features.mean(dim=(2, 3)))

    def predict_arguments(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw filter arguments (N×6, ``FILTERS`` order) for a composite of any size.

        ``composite``: N×3×H×W RGB in [0,1]; ``mask``: N×1×H×W soft foreground
        alpha in [0,1]. Both go to 256×256 as in the official code; the outputs are
        not clamped (the filters clamp to [-1, 1]; EMA runs on the raw values).
        """
        mask = mask.to(composite.dtype)
        return self(resize_for_network(composite), resize_for_network(mask))
