"""``adain``: the complete-background AdaIN harmonizer (Xing et al., ACM MM 2022) as a pipeline stage.

The network (:class:`~models.harmonizers.adain.network.AdainNet`) harmonizes a
128² copy of the composite; its output becomes a fitted colour map through the
shared predict-small / apply-full-resolution machinery (``ImageToImageHarmonizer``),
smoothed over time and applied to every frame. The background statistics of
Eq. 2 depend on the complete background alone, so they are computed once per
background object and kept in the stream's cache (emptied when the background
changes).

Weights: ours from ``weights/`` by default; ``--harmonizer-weights PATH`` overrides.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from models.frame import Image, on_device
from models.harmonizers.adain.network import AdainNet
from models.harmonizers.realtime import PREDICTION_RATE_HZ, ImageToImageHarmonizer, SmallInputs, network_input
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.registry import register
from models.weights import shipped_check, weights_path

ARCHITECTURE = f"{AdainNet.__module__}.{AdainNet.__name__}"
#: Side of the copy the network sees: ≈10 ms a prediction on one CPU thread.
INPUT_SIZE = 128


@register("harmonizer", "adain", "U-Net with complete-background AdaIN (Xing et al. 2022)",
          check=shipped_check(ARCHITECTURE, "no shipped AdaIN weights found in weights/; pass --harmonizer-weights PATH"))
class AdainHarmonizer(ImageToImageHarmonizer):
    """Foreground features re-normalised with the statistics of complete-background features."""

    input_size = INPUT_SIZE
    uses_background = True

    def __init__(self, strength: float = 1.0, device: str = "cpu", weights: str | os.PathLike | None = None,
                 rate_hz: float = PREDICTION_RATE_HZ, tau_s: float = 1.0, runtime: str = "torch") -> None:
        super().__init__(strength, device, rate_hz, tau_s, runtime)
        path = weights_path(weights, ARCHITECTURE, "the AdaIN harmonizer has no weights: pass --harmonizer-weights "
                            "PATH to a .safetensors file written by models.training.train_adain")
        self.network = AdainNet.from_checkpoint(path).to(device)
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)

    @torch.inference_mode()
    def predict_image(self, inputs: SmallInputs, cache: dict[str, Any]) -> Image:
        composite, mask = network_input(inputs.composite, self.device), network_input(inputs.mask, self.device)
        onnx = self.onnx_networks.get("adain")
        if cache.get("key") is not inputs.background:
            cache["key"] = inputs.background
            background = network_input(inputs.background, self.device)
            # The exported graph computes the statistics itself (see onnx_specs): it takes the image.
            cache["stats"] = background if onnx is not None else self.network.background_stats(background)
        out = (self.network if onnx is None else onnx)(composite, mask, cache["stats"])
        if on_device(inputs.composite):
            return out.to(inputs.composite.dtype)
        return out[0].permute(1, 2, 0).float().cpu().numpy()

    def onnx_specs(self) -> list:
        size = (1, 3, INPUT_SIZE, INPUT_SIZE)
        return [OnnxSpec("adain", _OneGraph(self.network), (size, (1, 1, INPUT_SIZE, INPUT_SIZE), size),
                         ("composite", "mask", "background"), ("harmonized",))]

    def close(self) -> None:
        self.network = None
        self.onnx_networks = {}


class _OneGraph(torch.nn.Module):
    """The network as one graph of the three images (the background statistics computed inside)."""

    def __init__(self, network: AdainNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, composite: torch.Tensor, mask: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.network.harmonize(composite, mask, background)
