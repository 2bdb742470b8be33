"""Drives a source through the pipeline into its sinks."""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Callable

from app.closing import close_all
from app.idle import IdleGate
from app.pipeline import FrameResult, Pacer, Pipeline
from app.prefetch import FramePrefetch
from app.sources.base import Source

log = logging.getLogger(__name__)


def run_stream(source: Source, pipeline: Pipeline, max_frames: int | None = None, fps_cap: float | None = None,
               stop: threading.Event | None = None,
               on_result: Callable[[FrameResult], None] | None = None, live: bool | None = None,
               always_on: bool | Callable[[], bool] = False) -> int:
    """Process frames until the source ends, ``max_frames`` or ``stop``; returns the frame count.

    Sinks are opened at the source's size and rate and all closed at the end, even
    when one of them fails to close; on an error they are closed with
    ``success=False`` so no partial file is kept.
    A file source feeding a real-time sink (virtual camera) plays at its own rate.
    ``live`` (default: a live source or a real-time sink) tells harmonizers
    whether they may work asynchronously.
    While no app reads the virtual camera and no other output needs frames, no frame
    is read or processed (see :mod:`app.idle`); ``always_on`` (or a callable asked
    before each frame) keeps working regardless.
    On the host path the next frame is captured and matted while the current one is
    finished (:mod:`app.prefetch`).
    """
    realtime = any(s.realtime for s in pipeline.sinks)
    pipeline.live = (source.live or realtime) if live is None else live
    rate = fps_cap or (source.fps if realtime and not source.live else None)
    pacer = Pacer(rate)
    stop = stop if stop is not None else threading.Event()
    idle = IdleGate(always_on)
    last = None  # the newest output: what a paused stream keeps sending
    opened = []
    count = 0
    prefetch = FramePrefetch(source, pipeline, overlap=not pipeline.resident)
    try:
        for sink in pipeline.sinks:
            opened.append(sink)  # before open(): a signal during it must still discard the partial file
            sink.open(source.size, fps_cap or source.fps)
        while (max_frames is None or count < max_frames) and not stop.is_set():
            if idle.should_pause(pipeline):
                prefetch.drop()
                idle.wait_for_reader(source, pipeline, last, stop)
                continue
            captured = prefetch.next(more=max_frames is None or count + 1 < max_frames)
            if captured is None:
                break
            result = prefetch.process(captured)
            pacer.wait()
            pipeline.emit(result)
            last = result.output
            start = captured.frame.timestamp if source.live else captured.started
            pipeline.times.frame_finished((time.monotonic() - start) * 1e3)
            count += 1
            if on_result is not None:
                on_result(result)
    except BaseException:
        source.interrupt()  # a read that waits for a lost camera returns at once: nothing below waits for it
        prefetch.close()  # nothing reads the source or runs a stage after this
        try:
            close_all([functools.partial(sink.close, success=False) for sink in opened], "the outputs")
        except Exception:  # the error that stopped the stream is the one to report
            log.warning("an output failed to close after an error", exc_info=True)
        raise
    prefetch.close()
    close_all([functools.partial(sink.close, success=True) for sink in opened], "the outputs")
    return count
