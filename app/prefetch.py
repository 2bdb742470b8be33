"""Overlapping consecutive frames: while frame n is harmonized, frame n+1 is composed and frame n+2 is captured
and matted.

On a CPU a frame's work comes in three steps (:meth:`Pipeline.matte_frame`: capture, MediaPipe;
:meth:`Pipeline.compose`: the matte's post-processing, the background, the blend;
:meth:`Pipeline.finish`: harmonization, then the loop sends the frame), and almost all of it runs in
OpenCV, NumPy, Numba and MediaPipe code that releases the GIL. Running the first two steps of the next
frames on worker threads of their own keeps both cores at work. Two threads (capture and matting
ahead, the rest on the loop's thread) took the 2-core EPYC at 1280×720 with ``defringe`` and
``harmonizer`` from 43 to 52 FPS. The third matters where another application keeps a core busy: the
kernel shares the cores among the runnable threads, so a loop whose longest step holds half a frame's
CPU time gets through frames at the pace of that one thread's share.

Each step keeps its own temporal state and lock, so the output is the same frame for frame as
without overlap. On a GPU path the device already runs asynchronously, so frames are not overlapped
there.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from app.pipeline import Composed, FrameResult, Matted, Pipeline
from app.sources.base import Source
from models.frame import Frame

log = logging.getLogger(__name__)

#: Frames prepared ahead of the one being finished: one being composed, one being captured and matted.
DEPTH = 2


@dataclass(frozen=True)
class Captured:
    """A frame read and, when overlapping, the work done on it ahead (``done``: matted, or composed too);
    ``started`` is the monotonic time its capture began (for latency)."""

    started: float
    frame: Frame
    done: Matted | Composed | None = None


class FramePrefetch:
    """Hands out matted frames in order, preparing the next ones on worker threads when ``overlap``."""

    def __init__(self, source: Source, pipeline: Pipeline, overlap: bool) -> None:
        self.source, self.pipeline = source, pipeline
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="frame-prefetch") if overlap else None
        self._composer = ThreadPoolExecutor(1, thread_name_prefix="frame-compose") if overlap else None
        self._ahead: deque[Future[Captured | None]] = deque()  # oldest first

    def _capture(self) -> Captured | None:
        started = time.monotonic()
        with self.pipeline.times.measure("capture"):
            frame = self.source.read()
        if frame is None:
            return None
        return Captured(started, frame, self.pipeline.matte_frame(frame) if self._reader is not None else None)

    def _compose(self, read: Future[Captured | None]) -> Captured | None:
        captured = read.result()
        if captured is None:
            return None
        return replace(captured, done=self.pipeline.compose(captured.done))

    def next(self, wanted: int | None = None) -> Captured | None:
        """The next matted frame (None at the end of the source). ``wanted``: how many frames are wanted after
        this one (None: all of them); up to :data:`DEPTH` of them are started at once, never more, so no
        frame is read in vain."""
        captured = self._ahead.popleft().result() if self._ahead else self._capture()
        if captured is None or self._reader is None:
            return captured
        while len(self._ahead) < (DEPTH if wanted is None else min(DEPTH, wanted)):
            self._ahead.append(self._composer.submit(self._compose, self._reader.submit(self._capture)))
        return captured

    def process(self, captured: Captured) -> FrameResult:
        """The frame's result: its last steps when the first ran ahead, else the whole frame."""
        if captured.done is None:
            return self.pipeline.process(captured.frame)
        return self.pipeline.finish(captured.done)

    def drop(self) -> None:
        """Wait for the frames in preparation and discard them (before a pause, or when the stream stops)."""
        while self._ahead:
            try:
                self._ahead.popleft().result()
            except Exception:  # a frame nobody will see: its failure is not the stream's
                log.debug("a prefetched frame failed after the stream stopped", exc_info=True)

    def close(self) -> None:
        """Drop the frames in preparation and stop the workers: nothing reads the source after this."""
        self.drop()
        for pool in (self._reader, self._composer):
            if pool is not None:
                pool.shutdown(wait=True)
