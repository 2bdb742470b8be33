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


#: The longest gap (seconds of the frames' own clock) between two frames of one stream: a longer one is a
#: pause (nobody watched), a stall or a jump, after which no state is carried over from before it.
STREAM_GAP_S = 0.5

#: Where a frame stands in its stream: (index, timestamp in seconds, shape).
StreamPoint = tuple[int, float, tuple[int, ...]]


def follows(index: int, t: float, shape: tuple[int, ...], last: StreamPoint | None, within: int) -> bool:
    """Whether frame ``index`` taken at ``t`` with size ``shape`` continues the stream from ``last``: at most
    ``within`` frames and :data:`STREAM_GAP_S` seconds after it, at the same size. A still (the same index
    again), a seek, a new size or a pause does not; a pause is told by time, because a paused camera's
    frame indices run on without a gap."""
    if last is None or tuple(shape) != tuple(last[2]):
        return False
    return 0 < index - last[0] <= within and 0 < t - last[1] <= STREAM_GAP_S


def follow_share(change: np.ndarray | torch.Tensor, lo: float, hi: float) -> np.ndarray | torch.Tensor:
    """How much of a new sample to take beyond the time constant's weight: clip((c − lo) / (hi − lo), 0, 1).

    ``change`` measures what moved (e.g. the frame's own change); below ``lo`` the EMA smooths with
    its time constant, from ``hi`` on it takes the new sample whole, so it never lags behind motion.
    """
    ramp = (change - lo) * (1.0 / (hi - lo))
    return ramp.clamp(0, 1) if isinstance(ramp, torch.Tensor) else np.clip(ramp, 0, 1)


class TimeEMA:
    """EMA of an array, tensor (kept on its device) or scalar whose state starts at the first sample."""

    def __init__(self, tau: float) -> None:
        self.tau = float(tau)
        self.value: np.ndarray | torch.Tensor | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self.value = None
        self._t = None

    def update(self, sample: np.ndarray | torch.Tensor, t: float,
               follow: np.ndarray | torch.Tensor | None = None) -> np.ndarray | torch.Tensor:
        """Blend ``sample`` observed at time ``t`` (seconds) into the state and return the state
        (owned by the EMA: copy it before changing it). ``follow`` (an H×W image in [0,1], or a tensor
        1×1×h×w, at the sample's size or smaller): per pixel, the share of the rest of the way to the
        sample taken at once, w' = w + (1 − w)·follow; a smaller map's weights are enlarged bilinearly."""
        tensor = isinstance(sample, torch.Tensor)
        shape = tuple(sample.shape) if tensor else np.shape(sample)
        if (self.value is None or self._t is None or tuple(self.value.shape) != shape or t < self._t
                or tensor != isinstance(self.value, torch.Tensor)):
            self.value = sample.float().clone() if tensor else np.array(sample, dtype=np.float32, copy=True)
        else:
            w = ema_weight(t - self._t, self.tau)
            # In place and in one pass: the state can be a full-resolution alpha (on a device, too).
            if follow is not None and tensor:
                weight = torch.nn.functional.interpolate(w + (1.0 - w) * follow.to(self.value.dtype),
                                                         size=self.value.shape[-2:], mode="bilinear")
                self.value.add_(weight * (sample.to(self.value.dtype) - self.value))
            elif follow is not None:
                # Four passes over the frame: the weights are made at the map's own (small) size.
                weight = cv2.resize(np.float32(w) + np.float32(1.0 - w) * follow, shape[::-1],
                                    interpolation=cv2.INTER_LINEAR)
                delta = cv2.subtract(np.asarray(sample, np.float32), self.value)
                cv2.multiply(delta, weight, dst=delta)
                cv2.add(self.value, delta, dst=self.value)
            elif tensor:
                self.value.lerp_(sample.to(self.value.dtype), w)
            else:
                cv2.addWeighted(np.asarray(sample, np.float32), w, self.value, 1.0 - w, 0.0, dst=self.value)
        self._t = t
        return self.value
