"""PHNet (Efremyan et al., "PHNet: Patch-based Normalization for Portrait Harmonization", 2024), §4.3.

Encoder of six Conv–InstanceNorm–ReLU layers (strides 2,1,2,1,2,1), the SE bottleneck fed by
the PFE (§4.2), and six decoder steps ``x ← Up_i(SkipFusion_i(x, skip_i))`` over the skips
e5…e0, where the last ``len(grid_count) − 1`` skips first pass through a PN block (§4.1) with
the mask at their scale. Output: sigmoid of the last transposed convolution, a full N×3×H×W
image in (0, 1); the caller composites it over the background. Our configurations (not the official
ones) move the input towards that image by a learned per-image share (:class:`Confidence`).

The layout reproduces the official code so that the authors' checkpoints load strictly
(``iharmony512.pth``: 77 keys, 9,994,295 parameters; ``ffhqh{256,512,1024}.pth``: 85 keys,
39,921,641 parameters). Where the code differs from the paper, we follow the code:

* The first decoder step concatenates the bottleneck with e5 itself (the skip list starts at
  the last encoder output, before the SE block); the input image, a seventh skip, is never used,
  but its fusion conv ``skip.6`` is in the checkpoints, so it is built.
* PN block k acts on decoder step ``7 − len(grid_count) + k``; the last one built (3 channels,
  1×1 grid) is never reached, yet is saved, so it is built too. The PFE's grid is
  ``grid_count[1]``. The paper's "9, 16, 25 patches" are the FFHQH grids 4, 3, 2 here.
* H and W must be multiples of 8 (three stride-2 layers and exact skip shapes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor, nn

from models.harmonizers.phnet.blocks import (Confidence, PatchFeatureExtractor, PatchNormalization, SkipFusion,
                                             SqueezeExcitation)
from models.ops.checkpoint import load_state_dict_file, load_strict

#: Both sides of the input must be multiples of this.
SIZE_MULTIPLE = 8
#: Encoder layers: (kernel, stride); the mask is halved after each stride-2 layer.
_ENCODER = ((4, 2), (3, 1), (4, 2), (3, 1), (4, 2), (3, 1))
#: Decoder steps mirror the encoder; the first three have BatchNorm, the last has no activation.
_DECODER = ((3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (4, 2))


@dataclass(frozen=True)
class PHNetConfig:
    """One configuration (official or ours): encoder widths (input first), PN grid sides, and whether the
    output is scaled by a learned :class:`~models.harmonizers.phnet.blocks.Confidence` (ours only)."""

    name: str
    enc_sizes: tuple[int, ...]
    grid_count: tuple[int, ...]
    confidence: bool = False


#: The iHarmony4 model (``config/test_iHarmony4.yaml``, ``iharmony512.pth``).
IHARMONY4 = PHNetConfig("iharmony4", (3, 16, 32, 64, 128, 256, 512), (10, 5, 1))
#: The FFHQH portrait model (``config/test_FFHQH.yaml``, ``ffhqh{256,512,1024}.pth``).
FFHQH = PHNetConfig("ffhqh", (3, 16, 64, 128, 256, 512, 1024), (4, 3, 2, 1))
#: Ours (``models.training.train_phnet``): narrow enough for one CPU thread in real time at 256 px, with a
#: confidence head so that a person who already fits is left alone.
SMALL = PHNetConfig("small", (3, 16, 16, 32, 48, 64, 96), (4, 3, 1), confidence=True)
CONFIGS = (IHARMONY4, FFHQH, SMALL)


def _encoder_layer(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1), nn.InstanceNorm2d(c_out),
                         nn.ReLU())


def _decoder_layer(step: int, c_in: int, c_out: int) -> nn.Sequential:
    kernel, stride = _DECODER[step]
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=1)]
    if step < 3:
        layers.append(nn.BatchNorm2d(c_out))
    if step < len(_DECODER) - 1:
        layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


class PHNet(nn.Module):
    """PHNet with the official parameter names; ``forward(composite, mask)`` → raw sigmoid output.

    Submodules are created in the official order (PFE, encoder, PN blocks, decoder, skip
    fusions, SE; our confidence head last), so a seeded random initialisation equals the official one.
    """

    def __init__(self, config: PHNetConfig, branch_weights: tuple[float, float] = (0.5, 0.5),
                 gain: float = 0.8) -> None:
        super().__init__()
        self.config = config
        enc, grids = config.enc_sizes, config.grid_count
        dec = enc[::-1]
        self.start_level = len(dec) - len(grids)
        self.feature_extractor = PatchFeatureExtractor(grid=grids[1], channels=enc[0])
        self.encoder = nn.ModuleList(_encoder_layer(enc[i], enc[i + 1], k, s) for i, (k, s) in enumerate(_ENCODER))
        self.normalizers = nn.ModuleList(PatchNormalization(dec[self.start_level + k], grid, branch_weights, gain)
                                         for k, grid in enumerate(grids))
        self.decoder = nn.ModuleList(_decoder_layer(i, dec[i], dec[i + 1]) for i in range(len(_DECODER)))
        self.skip = nn.ModuleList(SkipFusion(c) for c in dec)
        self.SE_block = SqueezeExcitation(enc[-1])
        self.confidence = Confidence() if config.confidence else None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> PHNet:
        """The network of an official PHNet checkpoint (or our ``.safetensors`` of one), in eval mode.

        The configuration (iHarmony4, FFHQH or our small one) is the one whose key names and shapes the file
        fits best; the file must then fit it exactly. Raises
        :class:`models.ops.checkpoint.CheckpointError` (a ``ValueError``) with one sentence.
        """
        state = load_state_dict_file(path, "PHNet checkpoint")
        config = min(CONFIGS, key=lambda c: _mismatches(c, state))
        net = cls(config)
        load_strict(net, state, f"PHNet network ({config.name} configuration)", path)
        return net.eval()

    def forward(self, composite: Tensor, mask: Tensor) -> Tensor:
        """``composite`` N×3×H×W in [0,1], ``mask`` N×1×H×W binary (H, W multiples of 8) → N×3×H×W: the
        prediction, moved from the composite by the confidence head's share where the network has one."""
        mask = mask.to(composite.dtype)
        out = self.prediction(composite, mask)
        if self.confidence is None:
            return out
        return composite + self.confidence(composite, out, mask) * (out - composite)

    def prediction(self, composite: Tensor, mask: Tensor) -> Tensor:
        """The network's own image for ``forward``'s inputs, before any confidence head (the official forward)."""
        h, w = composite.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"PHNet needs height and width that are multiples of {SIZE_MULTIPLE}, "
                             f"got {h}×{w}; pad the input first.")
        mask = mask.to(composite.dtype)
        aux = self.feature_extractor(composite, mask)
        skips, masks = [], []
        x = composite
        for layer, (_, stride) in zip(self.encoder, _ENCODER):
            x = layer(x)
            if stride == 2:  # nearest ×0.5 of an even-sized map (official F.interpolate) is this slice
                mask = mask[:, :, ::2, ::2]
            skips.append(x)
            masks.append(mask)
        x = self.SE_block(x, aux)
        for step, (skip, skip_mask, fuse, up) in enumerate(zip(skips[::-1], masks[::-1], self.skip, self.decoder)):
            if step >= self.start_level:
                skip = self.normalizers[step - self.start_level](skip, skip_mask)
            x = up(fuse(x, skip))
        return torch.sigmoid(x)


@lru_cache(maxsize=None)
def _shapes(config: PHNetConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return {k: tuple(v.shape) for k, v in PHNet(config).state_dict().items()}


def _mismatches(config: PHNetConfig, state: dict[str, Tensor]) -> int:
    """How many keys of ``state`` are missing from, extra to or shaped unlike ``config``'s."""
    expected = _shapes(config)
    wrong = sum(1 for k, v in state.items() if expected.get(k) != tuple(v.shape))
    return wrong + sum(1 for k in expected if k not in state)
