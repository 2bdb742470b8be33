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
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.harmonizers.base import Harmonizer, StreamState
from models.harmonizers.filter_apply import FilterApplier
from models.harmonizers.harmonizer import INPUT_SIZE, HarmonizerNet
from models.harmonizers.harmonizer_lite import HarmonizerLiteNet
from models.harmonizers.parameter_tracker import ParameterTracker
from models.ops.checkpoint import load_state_dict_file
from models.registry import register
from models.weights import default_weights

LITE = f"{HarmonizerLiteNet.__module__}.{HarmonizerLiteNet.__name__}"


def load_network(path: str | os.PathLike) -> HarmonizerNet | HarmonizerLiteNet:
    """Our safetensors (Lite) or an official ``harmonizer.pth`` (B0), told apart by their keys."""
    keys = load_state_dict_file(path, "harmonizer checkpoint").keys()
    if "backbone._conv_fg.weight" in keys and "backbone._blocks.0._se_reduce.weight" in keys:
        return HarmonizerNet.from_checkpoint(path)  # official layout: B0 blocks have squeeze-excite
    return HarmonizerLiteNet.from_checkpoint(path)


def _check() -> str | None:
    if default_weights(LITE) is None:
        return "no shipped weights found in weights/; pass --harmonizer-weights PATH"
    return None


def small(image: np.ndarray) -> np.ndarray:
    """The network's 256² input: bilinear without antialiasing, like the official resize."""
    return cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)


@dataclass
class _Inputs:
    composite: np.ndarray   # uint8 256×256×3
    alpha: np.ndarray       # float32 256×256
    background: np.ndarray | None  # the complete background, full size (same object while unchanged)


@register("harmonizer", "harmonizer", "white-box filter regression (Harmonizer, Ke et al. 2022)", check=_check)
class FilterHarmonizer(Harmonizer):
    """Predicts filter arguments at ``rate_hz``, smooths them with ``tau_s``, applies them every frame."""

    def __init__(self, strength: float = 1.0, device: str = "cpu", weights: str | os.PathLike | None = None,
                 rate_hz: float = 10.0, tau_s: float = 1.0) -> None:
        super().__init__(strength, device)
        path = weights or default_weights(LITE)
        if path is None:
            raise FileNotFoundError("the harmonizer has no weights: pass --harmonizer-weights PATH to our "
                                    ".safetensors or an official harmonizer.pth")
        self.network = load_network(path).to(device)
        self.needs_background = getattr(self.network, "complete_background", False)
        self.rate_hz, self.tau_s = rate_hz, tau_s
        self._embedding: tuple[np.ndarray, torch.Tensor] | None = None

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        t = t.permute(2, 0, 1) if t.ndim == 3 else t[None]
        return t[None].float().div_(255 if image.dtype == np.uint8 else 1)

    def _background_embedding(self, background: np.ndarray) -> torch.Tensor:
        # Image and colour backgrounds hand over the same array while unchanged: embed once.
        if self._embedding is None or self._embedding[0] is not background:
            self._embedding = (background, self.network.embed_background(self._tensor(small(background))))
        return self._embedding[1]

    @torch.inference_mode()
    def predict(self, inputs: _Inputs) -> np.ndarray:
        """Raw (unclamped) arguments, in filter order, for one set of inputs."""
        composite, alpha = self._tensor(inputs.composite), self._tensor(inputs.alpha)
        if self.needs_background:
            args = self.network(composite, alpha, self._background_embedding(inputs.background))
        else:
            args = self.network(composite, alpha)
        return args[0].float().cpu().numpy()

    def _stream(self, state: StreamState) -> tuple[ParameterTracker, FilterApplier]:
        if "tracker" not in state.data:
            state.data["tracker"] = ParameterTracker(self.predict, self.rate_hz, self.tau_s, live=state.live)
            state.data["applier"] = FilterApplier(self.device)
        return state.data["tracker"], state.data["applier"]

    def harmonize(self, composite, alpha, background, frame, state):
        if self.strength == 0:
            return composite
        tracker, applier = self._stream(state)
        if tracker.due(frame.timestamp):
            bg = background if self.needs_background else None
            tracker.submit(_Inputs(small(composite), small(alpha), bg), frame.timestamp)
        args = tracker.current()
        return composite if args is None else applier(composite, alpha, args, self.strength)

    def current_arguments(self, state: StreamState) -> np.ndarray | None:
        """The smoothed raw arguments of a stream (for LUT export and the GUI)."""
        tracker = state.data.get("tracker")
        return None if tracker is None else tracker.current()

    def close(self, state: StreamState | None = None) -> None:
        if state is not None and "tracker" in state.data:
            state.data.pop("tracker").close()
            state.data.pop("applier").close()
