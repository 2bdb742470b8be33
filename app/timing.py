"""Per-stage timings: what the GUI overlay and ``harmonicam bench`` show.

On a CUDA device the host only queues a stage's work, so a wall clock around it measures the
queueing. There the stages that run on the GPU are timed with CUDA events recorded on the
stream around them; an event pair is read once the GPU has passed its end (:meth:`StageTimes.summary`
and every new measure read the finished ones), so timing never makes the host wait.
"""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

STAGES = ("capture", "transfer", "matting", "post-processing", "background", "blend", "harmonize", "sink")
#: Stages whose work runs on the pipeline's device (capture and sinks are host work on every path).
DEVICE_STAGES = ("transfer", "matting", "post-processing", "background", "blend", "harmonize")


class StageTimes:
    """Rolling window of milliseconds per stage plus end-to-end frame times.

    Time spent paused (:meth:`pause` … :meth:`resume`: no app reads the virtual
    camera) is not frame time: frame completions are stamped on a clock that
    stands still while paused, so the frame rate after a pause is the working rate.
    """

    def __init__(self, window: int = 300, device: str | torch.device = "cpu") -> None:
        self.window = window
        #: CUDA events time the device stages (see the module's docstring); a "cuda" label without a GPU
        #: (the tests' device path on CPU tensors) is timed by the wall clock.
        self.events = torch.device(device).type == "cuda" and torch.cuda.is_available()
        self._pending: deque[tuple[str, torch.cuda.Event, torch.cuda.Event]] = deque()
        self.ms: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.frame_done: deque[float] = deque(maxlen=window)
        self._idle_s = 0.0
        self._paused_at: float | None = None

    def add(self, stage: str, ms: float) -> None:
        self.ms[stage].append(ms)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        if self.events and stage in DEVICE_STAGES:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            try:
                yield
            finally:
                end.record()
                self._pending.append((stage, start, end))
                self._read_events()
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1e3)

    def _read_events(self) -> None:
        """Add the times of the event pairs the GPU has passed, in order; never waits."""
        while self._pending and self._pending[0][2].query():
            stage, start, end = self._pending.popleft()
            self.add(stage, start.elapsed_time(end))

    def on_host(self) -> None:
        """Time every stage by the wall clock from now on (the pipeline moved to the CPU); event pairs still
        pending are dropped, since the device that would finish them may be gone."""
        self.events = False
        self._pending.clear()

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
        self._pending.clear()
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
        self._read_events()
        return {s: stats(v) for s, v in self.ms.items() if v}


def stats(values) -> dict[str, float]:
    arr = np.fromiter(values, dtype=np.float64)
    return {"median": round(float(np.median(arr)), 2), "p95": round(float(np.percentile(arr, 95)), 2)}


def run_figures(times: StageTimes, frames: int, wall_s: float) -> dict:
    """What a timed run of ``frames`` in ``wall_s`` seconds reports: frames, FPS, median and p95 latency, and
    the per-stage summary (a bench row's figures)."""
    latency = stats(times.latency_ms)
    return {"frames": frames, "fps": round(frames / wall_s, 1), "latency_ms": latency["median"],
            "latency_p95_ms": latency["p95"], "stages_ms": times.summary()}
