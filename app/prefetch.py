"""Overlapping consecutive frames: while frame n is harmonized, frame n+1 is composed, frame n+2's matte
post-processed, frame n+3 matted and frame n+4 captured.

On a CPU a frame's work comes in five steps: capture (:meth:`Source.read`: decoding, colour conversion),
:meth:`Pipeline.matte_frame` (MediaPipe), :meth:`Pipeline.refine` (the matte's post-processing),
:meth:`Pipeline.compose` (the background, the blend) and :meth:`Pipeline.finish` (harmonization; then the
loop sends the frame). Almost all of it runs in OpenCV, NumPy, Numba, PyAV and MediaPipe code that releases
the GIL, so the first four steps of the next frames run on worker threads of their own, one each, and keep
both cores at work. Two threads (capture and matting ahead, the rest on the loop's thread) took the 2-core
EPYC at 1280×720 with ``defringe`` and ``harmonizer`` from 43 to 52 FPS. One thread per step matters where
another application keeps a core busy: the kernel shares the cores among the runnable threads, so the more
of a frame's steps can run at once, the larger the loop's share against the busy process (2-core EPYC,
1280×720, one core busy, ``harmonicam bench``: 46.9 → 58.6 FPS, the median of three alternated runs, when
the matte's post-processing got a step of its own).

Each step keeps its own temporal state and lock, so the output is the same frame for frame as without
overlap. On a GPU path the device already runs asynchronously, so frames are not overlapped there.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable

from app.pipeline import Composed, FrameResult, Matted, Pipeline, Refined
from app.sources.base import Source
from models.frame import Frame

log = logging.getLogger(__name__)

#: Frames prepared ahead of the one being finished: one being composed, one post-processed, one matted, one
#: captured (from a live source, read as the matting starts on it).
DEPTH = 4


@dataclass(frozen=True)
class Captured:
    """A frame read and the work done on it ahead (``done``: matted, then post-processed, then composed too);
    ``started`` is the monotonic time its capture began (for latency)."""

    started: float
    frame: Frame
    done: Matted | Refined | Composed | None = None


class FramePrefetch:
    """Hands out frames in order, preparing the next ones on worker threads, a step each, when ``overlap``."""

    def __init__(self, source: Source, pipeline: Pipeline, overlap: bool) -> None:
        self.source, self.pipeline, self.overlap = source, pipeline, overlap

        def worker(step: str, wanted: bool = True) -> ThreadPoolExecutor | None:
            return ThreadPoolExecutor(1, thread_name_prefix=f"frame-{step}") if overlap and wanted else None

        # A file's reading is its decoding: a step of its own. A live source hands over the newest frame its
        # own thread has decoded, so the matting step reads it when it starts on it, as fresh as it can be.
        self._reader = worker("capture", not source.live)
        self._matter = worker("matte")
        self._refiner = worker("refine")
        self._composer = worker("compose")
        self._ahead: deque[Future[Captured | None]] = deque()  # oldest first

    def _capture(self) -> Captured | None:
        started = time.monotonic()
        with self.pipeline.times.measure("capture"):
            frame = self.source.read()
        return None if frame is None else Captured(started, frame)

    def _matte(self, read: Future[Captured | None] | None) -> Captured | None:
        captured = self._capture() if read is None else read.result()
        return None if captured is None else replace(captured, done=self.pipeline.matte_frame(captured.frame))

    @staticmethod
    def _advance(step: Callable[[Matted | Refined], Matted | Refined | Composed],
                 earlier: Future[Captured | None]) -> Captured | None:
        """The frame the earlier step gave, taken one ``step`` further (None at the end of the source)."""
        captured = earlier.result()
        return None if captured is None else replace(captured, done=step(captured.done))

    def next(self, wanted: int | None = None) -> Captured | None:
        """The next frame, with the work done on it ahead (None at the end of the source). ``wanted``: how many
        frames are wanted after this one (None: all of them); up to :data:`DEPTH` of them are started at once,
        never more, so no frame is read in vain."""
        if not self.overlap:
            return self._capture()
        # Every frame, the first too, goes through the workers: each step then sees the frames in order.
        while len(self._ahead) < 1 + (DEPTH if wanted is None else min(DEPTH, wanted)):
            read = None if self._reader is None else self._reader.submit(self._capture)
            matted = self._matter.submit(self._matte, read)
            refined = self._refiner.submit(self._advance, self.pipeline.refine, matted)
            self._ahead.append(self._composer.submit(self._advance, self.pipeline.compose, refined))
        return self._ahead.popleft().result()

    def process(self, captured: Captured) -> FrameResult:
        """The frame's result: its last step when the others ran ahead, else the whole frame."""
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
        for pool in (self._reader, self._matter, self._refiner, self._composer):
            if pool is not None:
                pool.shutdown(wait=True)
