"""Exponential smoothing with a time constant in seconds.

Smoothing per frame with a fixed factor would change behaviour with the frame
rate; weighting each update by ``1 - exp(-dt / tau)`` makes the response depend
only on elapsed time.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def ema_weight(dt: float, tau: float) -> float:
    """Weight of the new sample after ``dt`` seconds for time constant ``tau``."""
    if tau <= 0 or dt <= 0:
        return 1.0 if tau <= 0 else 0.0
    return 1.0 - math.exp(-dt / tau)


def follows(index: int, shape: tuple[int, ...], last: tuple[int, tuple[int, ...]] | None, within: int) -> bool:
    """Whether frame ``index`` of size ``shape`` continues the stream at most ``within`` frames after
    ``last`` = (index, shape) of an earlier frame; a still (the same index again), a seek or a new size
    does not."""
    return last is not None and 0 < index - last[0] <= within and tuple(shape) == tuple(last[1])


class TimeEMA:
    """EMA of an array, tensor (kept on its device) or scalar whose state starts at the first sample."""

    def __init__(self, tau: float) -> None:
        self.tau = float(tau)
        self.value: np.ndarray | torch.Tensor | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self.value = None
        self._t = None

    def update(self, sample: np.ndarray | torch.Tensor, t: float) -> np.ndarray | torch.Tensor:
        """Blend ``sample`` observed at time ``t`` (seconds) into the state and return the state
        (owned by the EMA: copy it before changing it)."""
        tensor = isinstance(sample, torch.Tensor)
        shape = tuple(sample.shape) if tensor else np.shape(sample)
        if (self.value is None or self._t is None or tuple(self.value.shape) != shape or t < self._t
                or tensor != isinstance(self.value, torch.Tensor)):
            self.value = sample.float().clone() if tensor else np.array(sample, dtype=np.float32, copy=True)
        else:
            w = ema_weight(t - self._t, self.tau)
            # In place and in one pass: the state can be a full-resolution alpha (on a device, too).
            if tensor:
                self.value.lerp_(sample.to(self.value.dtype), w)
            else:
                cv2.addWeighted(np.asarray(sample, np.float32), w, self.value, 1.0 - w, 0.0, dst=self.value)
        self._t = t
        return self.value
