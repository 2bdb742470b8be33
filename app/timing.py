"""Per-stage timings: what the GUI overlay and ``harmonicam bench`` show."""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from typing import Iterator

import numpy as np

STAGES = ("capture", "transfer", "matting", "background", "blend", "harmonize", "sink")


class StageTimes:
    """Rolling window of milliseconds per stage plus end-to-end frame times.

    Time spent paused (:meth:`pause` … :meth:`resume`: no app reads the virtual
    camera) is not frame time: frame completions are stamped on a clock that
    stands still while paused, so the frame rate after a pause is the working rate.
    """

    def __init__(self, window: int = 300) -> None:
        self.window = window
        self.ms: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.frame_done: deque[float] = deque(maxlen=window)
        self._idle_s = 0.0
        self._paused_at: float | None = None

    def add(self, stage: str, ms: float) -> None:
        self.ms[stage].append(ms)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1e3)

    def frame_finished(self, latency_ms: float) -> None:
        self.latency_ms.append(latency_ms)
        self.frame_done.append(time.perf_counter() - self._idle_s)

    def pause(self) -> None:
        """No frames are made from now until :meth:`resume`; that time is left out of the frame rate."""
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._idle_s += time.perf_counter() - self._paused_at
            self._paused_at = None

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def clear(self) -> None:
        for d in (*self.ms.values(), self.latency_ms, self.frame_done):
            d.clear()

    def fps(self) -> float:
        """Output frames per second over the window (0 while paused)."""
        done = self.frame_done
        if len(done) < 2 or self.paused:
            return 0.0
        return (len(done) - 1) / max(done[-1] - done[0], 1e-9)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"median": ms, "p95": ms}} for stages that ran."""
        return {s: stats(v) for s, v in self.ms.items() if v}


def stats(values) -> dict[str, float]:
    arr = np.fromiter(values, dtype=np.float64)
    return {"median": round(float(np.median(arr)), 2), "p95": round(float(np.percentile(arr, 95)), 2)}
