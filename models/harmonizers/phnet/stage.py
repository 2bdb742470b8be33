"""PHNet (Efremyan et al. 2024) as a pipeline stage: a harmonized small copy, carried as a colour map.

The network runs on a copy whose long side is ``input_size`` (256; 128 for our small weights, the
scale they were trained at) with the frame's aspect ratio kept — the official demo squashes to a
square, which distorts faces — padded at the bottom and right to multiples of 8 by repeating
the edge, then cropped back. As upstream, the raw output is composited over the input
(``out·m + comp·(1 − m)``); the network sees the mask binarised at 0.5 (it was trained on
binary masks), the composite and the colour-map fit use the soft matte. The shared machinery fits, smooths and applies the colour map
(:class:`~models.harmonizers.realtime.ImageToImageHarmonizer`).

Weights: ours (the small configuration with its confidence head, ``models.training.train_phnet``)
from ``weights/`` by default; a user's official checkpoint (``iharmony512.pth``, ``ffhqh{256,512,1024}.pth``) through
``--harmonizer-weights`` (the official ones are not shipped: their licence is share-alike).
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import torch
import torch.nn.functional as F

from models.blending.base import Composite
from models.frame import Image, on_device
from models.harmonizers.phnet.network import SIZE_MULTIPLE, SMALL, PHNet
from models.harmonizers.realtime import PREDICTION_RATE_HZ, ImageToImageHarmonizer, SmallInputs, network_input
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.ops.sizes import fit_long_side
from models.registry import register
from models.stream import StreamState
from models.weights import shipped_check, weights_path

ARCHITECTURE = f"{PHNet.__module__}.{PHNet.__name__}"
INPUT_SIZE = 256
#: Sizes for configurations trained at another scale (ours: 128² crops).
INPUT_SIZES = {SMALL.name: 128}
NO_WEIGHTS = ("no PHNet weights shipped; pass --harmonizer-weights PATH to an official PHNet checkpoint "
              "(iharmony512.pth, ffhqh512.pth)")


def shrink_keep_aspect(image: Image, long_side: int) -> Image:
    """A copy whose long side is at most ``long_side``, aspect ratio kept (bilinear, as ``shrink``)."""
    h, w = image.shape[-2:] if on_device(image) else image.shape[:2]
    size = fit_long_side(w, h, long_side)
    if size == (w, h):
        return image
    if on_device(image):
        return F.interpolate(image, size=size[::-1], mode="bilinear", align_corners=False)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def harmonize_padded(network: torch.nn.Module, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``network``'s harmonization of a composite of any size: N×3×H×W, the background unchanged.

    ``composite`` is N×3×H×W in [0,1], ``mask`` N×1×H×W soft in [0,1]. Both are padded at the
    bottom/right to multiples of 8 (edge repeated, nothing resampled), the network sees the
    mask binarised, and its output is cropped back and composited over ``composite``.
    """
    h, w = composite.shape[-2:]
    pad = (0, -w % SIZE_MULTIPLE, 0, -h % SIZE_MULTIPLE)
    padded = F.pad(composite, pad, mode="replicate")
    binary = F.pad((mask > 0.5).to(composite.dtype), pad, mode="replicate")
    out = network(padded, binary)[:, :, :h, :w]
    return torch.lerp(composite, out, mask)


@register("harmonizer", "phnet", "patch-based normalization network (PHNet, Efremyan et al. 2024)",
          check=shipped_check(ARCHITECTURE, NO_WEIGHTS))
class PHNetHarmonizer(ImageToImageHarmonizer):
    """Runs PHNet on an aspect-kept 256 px (small: 128 px) copy and carries its result as a fitted colour map."""

    input_size = INPUT_SIZE

    def __init__(self, strength: float = 1.0, device: str = "cpu", weights: str | os.PathLike | None = None,
                 rate_hz: float = PREDICTION_RATE_HZ, tau_s: float = 1.0, runtime: str = "torch") -> None:
        super().__init__(strength, device, rate_hz, tau_s, runtime)
        self.network = PHNet.from_checkpoint(weights_path(weights, ARCHITECTURE, NO_WEIGHTS)).to(device)
        self.input_size = INPUT_SIZES.get(self.network.config.name, INPUT_SIZE)
        # The patch grids bake the size into the graph: a frame shape other than the square gets its own
        # export on its first prediction (cached on disk, so once per shape and weights).
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)

    def _small_inputs(self, composite: Composite, background: Image, state: StreamState) -> SmallInputs:
        # Not the square ``shrink`` of the base class: PHNet is fully convolutional, so it gets the
        # frame's own shape, and the colour-map fit is per pixel, so it does not care.
        return SmallInputs(shrink_keep_aspect(composite.image, self.input_size),
                           shrink_keep_aspect(composite.alpha, self.input_size), None)

    @torch.inference_mode()
    def predict_image(self, inputs: SmallInputs, cache: dict[str, Any]) -> Image:
        composite = network_input(inputs.composite, self.device)
        network = self.onnx_networks.get("phnet", self.network)
        out = harmonize_padded(network, composite, network_input(inputs.mask, self.device))
        if on_device(inputs.composite):
            return out
        return out[0].permute(1, 2, 0).float().cpu().numpy()

    def onnx_specs(self) -> list:
        size = (self.input_size, self.input_size)  # any multiple of 8 works; the export fixes one
        return [OnnxSpec("phnet", self.network, ((1, 3, *size), (1, 1, *size)), ("composite", "mask"),
                         ("harmonized",))]

    def close(self) -> None:
        self.network = None
        self.onnx_networks = {}
