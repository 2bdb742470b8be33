"""The per-frame pipeline: matting → background → blending → harmonization → sinks.

The pipeline owns one of each stage. Any of them can be swapped while it runs:
a lock is held for the whole frame, so a swap lands between two frames, and
per-stream state is reset where the swap invalidates it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from app.backgrounds import Background
from app.sinks.base import Sink
from app.timing import StageTimes
from models.blending.base import Blend
from models.frame import Frame
from models.harmonizers.base import Harmonizer, StreamState
from models.matting.base import Matte, Matting
from models.matting.postprocess import MatteOptions, MattePostprocess


@dataclass
class FrameResult:
    frame: Frame
    matte: Matte
    background: np.ndarray
    composite: np.ndarray
    output: np.ndarray


class Pipeline:
    def __init__(self, matting: Matting, background: Background, blend: Blend, harmonizer: Harmonizer,
                 postprocess: MattePostprocess | None = None, sinks: list[Sink] | None = None) -> None:
        self.matting = matting
        self.background = background
        self.blend = blend
        self.harmonizer = harmonizer
        self.postprocess = postprocess or MattePostprocess()
        self.sinks = list(sinks or [])
        self.times = StageTimes()
        #: Flip the output horizontally (off by default: conferencing apps mirror only the self-view).
        self.mirror_output = False
        self._live = True
        self.state = self._fresh_state()
        self._lock = threading.RLock()

    # --- swaps (thread-safe; take effect at the next frame) -------------------------------
    def set_matting(self, matting: Matting) -> None:
        with self._lock:
            old, self.matting = self.matting, matting
            self.postprocess.reset()
        old.close()

    def set_background(self, background: Background) -> None:
        with self._lock:
            old, self.background = self.background, background
            self._new_state()
        old.close()

    def set_matte_options(self, options: MatteOptions) -> None:
        with self._lock:
            self.postprocess = MattePostprocess(options)

    def set_sinks(self, sinks: list[Sink]) -> None:
        with self._lock:
            self.sinks = list(sinks)

    def set_blend(self, blend: Blend) -> None:
        with self._lock:
            self.blend = blend

    def set_harmonizer(self, harmonizer: Harmonizer) -> None:
        with self._lock:
            old, self.harmonizer = self.harmonizer, harmonizer
            old.close(self.state)
            self.state = self._fresh_state()

    def reset_stream(self) -> None:
        """A new source (or a jump in it): forget every temporal state."""
        with self._lock:
            self.matting.reset()
            self.postprocess.reset()
            self._new_state()

    @property
    def live(self) -> bool:
        return self._live

    @live.setter
    def live(self, value: bool) -> None:
        with self._lock:
            if value != self._live:
                self._live = value
                self._new_state()

    def _fresh_state(self) -> StreamState:
        return StreamState(background_version=self.background.version, live=self._live)

    def _new_state(self) -> None:
        self.harmonizer.close(self.state)
        self.state = self._fresh_state()

    # --- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on ``frame``; the alpha always belongs to this very frame."""
        t = self.times
        with self._lock:
            with t.measure("matting"):
                matte = self.postprocess(frame, self.matting.matte(frame))
            with t.measure("background"):
                background = self.background.at(frame, matte.alpha)
            with t.measure("blend"):
                composite = self.blend.composite(frame.rgb, matte.alpha, background, matte.foreground)
            with t.measure("harmonize"):
                output = self.harmonizer.harmonize(composite, matte.alpha, background, frame, self.state)
        return FrameResult(frame, matte, background, composite, output)

    def emit(self, result: FrameResult) -> None:
        with self.times.measure("sink"), self._lock:  # a sink removed by set_sinks is never sent to after
            output = result.output[:, ::-1] if self.mirror_output else result.output
            for sink in self.sinks:
                sink.send(output)

    def close(self) -> None:
        with self._lock:
            self.harmonizer.close(self.state)
            self.matting.close()
            self.background.close()


class Pacer:
    """Sleeps so that frames leave at most at ``fps`` (None: as fast as possible)."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._next: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self._next is None or now - self._next > self.period:  # late: don't try to catch up
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self.period
