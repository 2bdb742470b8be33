"""Matte post-processing: temporal smoothing and edge-aware refinement.

Both keep the alpha soft. Smoothing uses a time constant in seconds (so it
does not change with the frame rate); refinement is a fast guided filter at
full resolution, guided by the same frame that is composited.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from models.frame import Frame
from models.matting.base import Matte
from models.ops.guided import fast_guided_filter
from models.ops.temporal import TimeEMA


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
            alpha = self._ema.update(alpha, frame.timestamp).copy()
        if self.options.refine:
            gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gray *= np.float32(1 / 255)
            alpha = fast_guided_filter(gray, alpha, self.options.radius, self.options.eps)
        return replace(matte, alpha=alpha)
