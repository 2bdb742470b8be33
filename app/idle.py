"""Pausing a stream while nobody watches it: no app reads the virtual camera and nothing else needs frames.

The run loop asks :meth:`IdleGate.should_pause` before every frame. A stream is
unwatched when it has outputs and every one of them reports zero readers
(``Sink.readers() == 0``: only the virtual camera counts its readers; a file, the
preview window or a sink that cannot tell (None) always needs frames), and the
caller's ``always_on`` is off. After :data:`PAUSE_AFTER_S` of that,
:meth:`IdleGate.wait_for_reader` takes over: no frame is read or processed, the
source is told to pause (a camera stops capturing), the timings stand still, and
every :data:`CHECK_S` the readers are counted again; the first reader resumes the
stream at once.

While paused, the last output frame (a black one before the first) is still sent
to the virtual camera, :data:`KEEPALIVE_FPS` times a second. With v4l2loopback's
``exclusive_caps=1`` (what Chrome needs) the device only shows up as a camera
once a frame has been written to it, and an app that opens it waits for frames;
without these frames a stream that starts paused would never be found by the
browser, and an app that opens the camera would see no picture until the
pipeline is back.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

import numpy as np

from app.pipeline import Pipeline
from app.sinks.base import Sink
from app.sources.base import Source

log = logging.getLogger(__name__)

#: How often a paused stream counts the readers again (seconds).
CHECK_S = 0.2
#: Frames per second sent to the virtual camera while paused.
KEEPALIVE_FPS = 2.0
#: How long nobody must read before the stream pauses (an app that closes and at once reopens the
#: camera, as browsers do when they start a call, does not pause it).
PAUSE_AFTER_S = 1.0
#: What the window and the log say while paused.
PAUSED_TEXT = "Paused — no app is using the virtual camera"


def unread(sinks: Iterable[Sink]) -> bool:
    """True when there are outputs and every one reports zero readers."""
    sinks = list(sinks)
    return bool(sinks) and all(sink.readers() == 0 for sink in sinks)


class IdleGate:
    """Decides when a stream pauses and runs the pause. ``always_on`` (a bool, or a callable asked each
    time, e.g. the window's checkbox) keeps the stream working."""

    def __init__(self, always_on: bool | Callable[[], bool] = False) -> None:
        self._always_on = always_on if callable(always_on) else (lambda: bool(always_on))
        self._unread_since: float | None = None

    def _wanted(self, pipeline: Pipeline) -> bool:
        return self._always_on() or not unread(pipeline.sinks)

    def should_pause(self, pipeline: Pipeline) -> bool:
        """Called before each frame: True once nobody has read for :data:`PAUSE_AFTER_S`."""
        if self._wanted(pipeline):
            self._unread_since = None
            return False
        now = time.monotonic()
        if self._unread_since is None:
            self._unread_since = now
        return now - self._unread_since >= PAUSE_AFTER_S

    def wait_for_reader(self, source: Source, pipeline: Pipeline, last: np.ndarray | None,
                        stop: threading.Event) -> None:
        """Pause until an app reads again or ``stop`` is set, sending ``last`` (or black) meanwhile."""
        log.info("no app is using the virtual camera: paused until one opens it (--always-on keeps it working)")
        if last is None:
            w, h = source.size
            last = np.zeros((h, w, 3), np.uint8)
        pipeline.times.pause()
        source.set_paused(True)
        try:
            next_frame = 0.0
            while not stop.is_set() and not self._wanted(pipeline):
                now = time.monotonic()
                if now >= next_frame:
                    pipeline.resend(last)
                    next_frame = now + 1.0 / KEEPALIVE_FPS
                stop.wait(min(CHECK_S, max(0.0, next_frame - time.monotonic())))
        finally:
            source.set_paused(False)
            pipeline.times.resume()
            self._unread_since = None
        if not stop.is_set():
            log.info("an app opened the virtual camera: working again")
