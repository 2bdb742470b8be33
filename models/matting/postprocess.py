"""Matte post-processing: temporal smoothing and edge-aware refinement.

Both keep the alpha soft. Smoothing uses a time constant in seconds (so it
does not change with the frame rate); refinement is a fast guided filter at
full resolution, guided by the same frame that is composited.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from models.frame import Frame, on_device
from models.matting.base import Matte
from models.ops.guided import fast_guided_filter, fast_guided_filter_tensor
from models.ops.tensor_image import rgb_to_gray
from models.ops.temporal import TimeEMA

NEGLIGIBLE_ALPHA = 0.25 / 255


@dataclass
class MatteOptions:
    smoothing_s: float = 0.05  # time constant of the alpha EMA; 0 disables
    refine: bool = True        # guided-filter refinement against the frame
    radius: int = 3
    eps: float = 2e-3


class MattePostprocess:
    """Stateful post-processing applied to every matte in stream order."""

    def __init__(self, options: MatteOptions | None = None) -> None:
        self.options = options or MatteOptions()
        self._ema = TimeEMA(self.options.smoothing_s)

    def reset(self) -> None:
        self._ema.reset()

    def __call__(self, frame: Frame, matte: Matte) -> Matte:
        alpha = matte.alpha
        if self.options.smoothing_s > 0:
            alpha = self._ema.update(alpha, frame.timestamp)
        if on_device(alpha):
            return replace(matte, alpha=self._device_alpha(frame, alpha))
        if self.options.refine:
            gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gray *= np.float32(1 / 255)
            alpha = fast_guided_filter(gray, alpha, self.options.radius, self.options.eps)
        else:
            alpha = np.array(alpha, dtype=np.float32)  # a copy: the EMA state must stay untouched
        # Models leave faint confidences (down to 1e-42) all over the background. Below a
        # quarter of a grey level they cannot change a pixel, but they would make every later
        # stage treat the whole frame as foreground (harmonizers work in the box of alpha > 0).
        cv2.threshold(alpha, NEGLIGIBLE_ALPHA, 0, cv2.THRESH_TOZERO, dst=alpha)
        return replace(matte, alpha=alpha)

    def _device_alpha(self, frame: Frame, alpha: torch.Tensor) -> torch.Tensor:
        """The same steps on the device (1×1×H×W); never writes into the EMA state."""
        if self.options.refine:
            alpha = fast_guided_filter_tensor(rgb_to_gray(frame.pixels), alpha, self.options.radius,
                                              self.options.eps)
        return torch.where(alpha > NEGLIGIBLE_ALPHA, alpha, 0.0)
