"""Linear blending: α·F + (1−α)·B."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from models.blending.base import Blend, Composite
from models.frame import Frame, on_device
from models.matting.base import Matte
from models.ops.regions import strip_boxes
from models.registry import register
from models.stream import StreamState


def blend_linear(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """uint8 fast path: OpenCV's per-pixel weighted sum (rounds once), only in strips around α > 0
    (:func:`~models.ops.regions.strip_boxes`, which skip most of the background beside a head; outside them
    the composite is the background as it is)."""
    a = np.asarray(alpha, dtype=np.float32)
    out = np.array(bg, order="C", copy=True)  # C order: OpenCV writes into a box of it
    for box in strip_boxes(a):
        inside = a[box]
        cv2.blendLinear(fg[box], bg[box], inside, 1.0 - inside, dst=out[box])
    return out


def blend_linear_torch(fg: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Float path for NCHW tensors in [0,1] (alpha N×1×H×W), on any device."""
    return torch.lerp(bg, fg, alpha)


@register("blend", "linear", "α·F + (1−α)·B")
class LinearBlend(Blend):
    """Plain alpha compositing; the foreground colour is the matting model's when it predicts one."""

    def blend(self, frame: Frame, matte: Matte, background, state: StreamState) -> Composite:
        fg = frame.image if matte.foreground is None else matte.foreground
        mix = blend_linear_torch if on_device(fg) else blend_linear
        return Composite(mix(fg, matte.alpha, background), matte.alpha, fg)
