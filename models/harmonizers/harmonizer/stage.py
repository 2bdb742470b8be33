"""Harmonizer (Ke et al., ECCV 2022) as a pipeline stage: the default harmonizer.

A network regresses the six white-box filter arguments from a 256² copy of the
composite and its mask (§3.2); the arguments are smoothed over time (§3.4,
"EMA"; the official demo's 0.96 at 25 fps is a time constant of ≈1 s, here in
seconds so it holds at any frame rate) and the filters are applied to every
frame at full resolution by :class:`FilterApplier`. Prediction runs at a fixed
rate on a worker thread for live streams (:class:`ParameterTracker`).

Weights: ours (``weights/``, EfficientNet-Lite0, optionally seeing the
complete background) by default; a user's official ``harmonizer.pth`` loads
into the official-compatible :class:`HarmonizerNet`.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from models.blending.base import Composite
from models.harmonizers.harmonizer.filter_apply import FilterApplier, effective_args
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet
from models.harmonizers.harmonizer.network import INPUT_SIZE, HarmonizerNet
from models.harmonizers.keep_bright import changes_pixels
from models.harmonizers.realtime import PREDICTION_RATE_HZ, SmallInputs, TransformHarmonizer, network_input
from models.ops.checkpoint import load_state_dict_file
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.registry import register
from models.weights import shipped_check, weights_path

LITE = f"{HarmonizerLiteNet.__module__}.{HarmonizerLiteNet.__name__}"


def load_network(path: str | os.PathLike) -> HarmonizerNet | HarmonizerLiteNet:
    """Our safetensors (Lite) or an official ``harmonizer.pth`` (B0), told apart by their keys."""
    keys = load_state_dict_file(path, "harmonizer checkpoint").keys()
    if "backbone._conv_fg.weight" in keys and "backbone._blocks.0._se_reduce.weight" in keys:
        return HarmonizerNet.from_checkpoint(path)  # official layout: B0 blocks have squeeze-excite
    return HarmonizerLiteNet.from_checkpoint(path)


@register("harmonizer", "harmonizer", "white-box filter regression (Harmonizer, Ke et al. 2022)",
          check=shipped_check(LITE, "no shipped weights found in weights/; pass --harmonizer-weights PATH"))
class FilterHarmonizer(TransformHarmonizer):
    """Predicts the six filter arguments (the transform), smooths them, applies the filters every frame."""

    input_size = INPUT_SIZE

    def __init__(self, strength: float = 1.0, device: str = "cpu", weights: str | os.PathLike | None = None,
                 rate_hz: float = PREDICTION_RATE_HZ, tau_s: float = 1.0, runtime: str = "torch") -> None:
        super().__init__(strength, device, rate_hz, tau_s, runtime)
        path = weights_path(weights, LITE, "the harmonizer has no weights: pass --harmonizer-weights PATH to our "
                            ".safetensors or an official harmonizer.pth")
        self.network = load_network(path).to(device)
        self.uses_background = getattr(self.network, "complete_background", False)
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)

    @property
    def identity(self) -> np.ndarray:
        return np.zeros(6, np.float32)

    @torch.inference_mode()
    def predict(self, inputs: SmallInputs, cache: dict[str, Any]) -> np.ndarray:
        """The arguments in filter order, clamped to the filters' range [-1, 1]."""
        composite, mask = network_input(inputs.composite, self.device), network_input(inputs.mask, self.device)
        onnx = self.onnx_networks.get("harmonizer")
        network = self.network if onnx is None else onnx
        if self.uses_background:
            # The embedding depends on the background only: once per background, per stream.
            if cache.get("key") is not inputs.background:
                cache["key"] = inputs.background
                background = network_input(inputs.background, self.device)
                # The exported graph embeds the background itself (see onnx_specs): it takes the image.
                cache["embedding"] = background if onnx is not None else self.network.embed_background(background)
            args = network(composite, mask, cache["embedding"])
        else:
            args = network(composite, mask)
        return effective_args(args[0].float())

    def apply(self, composite: Composite, transform: np.ndarray, stream: dict[str, Any]):
        return self._applier(stream)(composite.image, composite.alpha, transform, spans=composite.spans)

    def apply_lifted(self, composite: Composite, transform: np.ndarray, lift: np.ndarray,
                     stream: dict[str, Any]):
        """On the CPU the lift runs inside the filter pass (no second pass over the frame); elsewhere after it."""
        applier = self._applier(stream)
        if not changes_pixels(lift) or not applier.fuses_lift(composite.image):
            return super().apply_lifted(composite, transform, lift, stream)
        return applier(composite.image, composite.alpha, transform, lift=(float(lift[0]), float(lift[1])),
                       spans=composite.spans)

    def _applier(self, stream: dict[str, Any]) -> FilterApplier:
        applier = stream.get("filters")
        if applier is None:
            applier = stream["filters"] = FilterApplier(self.device)
        return applier

    def onnx_specs(self) -> list:
        size = (1, 3, INPUT_SIZE, INPUT_SIZE)
        if not self.uses_background:
            return [OnnxSpec("harmonizer", self.network, (size, (1, 1, INPUT_SIZE, INPUT_SIZE)),
                             ("composite", "mask"), ("arguments",))]
        return [OnnxSpec("harmonizer", _WithBackground(self.network),
                         (size, (1, 1, INPUT_SIZE, INPUT_SIZE), size), ("composite", "mask", "background"),
                         ("arguments",))]

    def close(self) -> None:
        self.network = None
        self.onnx_networks = {}


class _WithBackground(torch.nn.Module):
    """The complete-background variant as one graph: the background's embedding is computed inside."""

    def __init__(self, network: HarmonizerLiteNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, composite: torch.Tensor, mask: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.network(composite, mask, self.network.embed_background(background))
