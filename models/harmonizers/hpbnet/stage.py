"""``hpbnet``: HPBNet (Wang et al., CGF 2023) as a pipeline stage.

The network (:class:`~models.harmonizers.hpbnet.network.HpbNet`) harmonizes a
square copy of the composite (``INPUT_SIZE``², the size it was trained at); its
output, already corrected by Eq. 3 against the visible background, becomes a
fitted colour map through the shared predict-small / apply-full-resolution
machinery (``ImageToImageHarmonizer``), smoothed over time and applied to every
frame. Like the paper, it sees only the composite and the mask, not the complete
background.

Weights: ours from ``weights/`` by default; ``--harmonizer-weights PATH`` overrides.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from models.frame import Image, on_device
from models.harmonizers.hpbnet.network import HpbNet
from models.harmonizers.realtime import PREDICTION_RATE_HZ, ImageToImageHarmonizer, SmallInputs, network_input
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.registry import register
from models.weights import shipped_check, weights_path

ARCHITECTURE = f"{HpbNet.__module__}.{HpbNet.__name__}"
#: Side of the copy the network sees (the training size): a few ms a prediction on one CPU thread.
INPUT_SIZE = 96
NO_WEIGHTS = ("the HPBNet harmonizer has no weights: pass --harmonizer-weights PATH to a .safetensors file "
              "written by models.training.train_hpbnet")


@register("harmonizer", "hpbnet", "U-Net + StyleGAN2-style synthesis, colour-temperature correction "
          "(HPBNet, Wang et al. 2023)",
          check=shipped_check(ARCHITECTURE, "no shipped HPBNet weights found in weights/; pass --harmonizer-weights PATH"))
class HpbnetHarmonizer(ImageToImageHarmonizer):
    """A U-Net whose features drive a style-modulated generator; Eq. 3 keeps the background's colours."""

    input_size = INPUT_SIZE

    def __init__(self, strength: float = 1.0, device: str = "cpu", weights: str | os.PathLike | None = None,
                 rate_hz: float = PREDICTION_RATE_HZ, tau_s: float = 1.0, runtime: str = "torch") -> None:
        super().__init__(strength, device, rate_hz, tau_s, runtime)
        self.network = HpbNet.from_checkpoint(weights_path(weights, ARCHITECTURE, NO_WEIGHTS)).to(device)
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)

    @torch.inference_mode()
    def predict_image(self, inputs: SmallInputs, cache: dict[str, Any]) -> Image:
        network = self.onnx_networks.get("hpbnet", self.network)
        out = network(network_input(inputs.composite, self.device), network_input(inputs.mask, self.device))
        if on_device(inputs.composite):
            return out.to(inputs.composite.dtype)
        return out[0].permute(1, 2, 0).float().cpu().numpy()

    def onnx_specs(self) -> list:
        return [OnnxSpec("hpbnet", self.network, ((1, 3, INPUT_SIZE, INPUT_SIZE), (1, 1, INPUT_SIZE, INPUT_SIZE)),
                         ("composite", "mask"), ("harmonized",))]

    def close(self) -> None:
        self.network = None
        self.onnx_networks = {}
