"""The pipeline thread: ``run_stream`` on one source, the newest result kept in a one-slot holder.

The UI polls ``take()`` at screen pace, so a slow pipeline never queues frames
and the UI thread never waits for the pipeline.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from app.pipeline import FrameResult, Pipeline
from app.runner import run_stream
from app.sources.base import Source

log = logging.getLogger(__name__)


class FrameWorker:
    """Runs one source (which it then owns) through the pipeline until ``stop()``.

    ``on_end(error)`` runs on the worker thread when the stream ends by itself.
    ``always_on()`` is asked before each frame whether to keep working while no app
    reads the virtual camera (see :mod:`app.idle`).
    """

    def __init__(self, source: Source, pipeline: Pipeline, fps_cap: float | None,
                 on_end: Callable[[BaseException | None], None],
                 always_on: Callable[[], bool] = lambda: True) -> None:
        self.source = source
        self.pipeline = pipeline
        self.fps_cap = fps_cap
        self.always_on = always_on
        self._on_end = on_end
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: FrameResult | None = None
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _hold(self, result: FrameResult) -> None:
        with self._lock:
            self._latest = result

    def take(self) -> FrameResult | None:
        """The newest result not taken yet, or None."""
        with self._lock:
            result, self._latest = self._latest, None
        return result

    def _run(self) -> None:
        error = None
        try:
            # live: the window shows every stream in real time, so harmonizers must never make it wait.
            run_stream(self.source, self.pipeline, fps_cap=self.fps_cap, stop=self._stop, on_result=self._hold,
                       live=True, always_on=self.always_on)
        except Exception as exc:  # reported in the window; the app lives on
            log.exception("the pipeline stopped")
            error = exc
        if not self._stop.is_set():
            self._on_end(error)

    def stop(self) -> None:
        """Stop, join and close the source (a live one first: its ``read`` may wait for a lost camera)."""
        self._stop.set()
        if self.source.live:
            self.source.close()
        if self._thread.is_alive():
            self._thread.join()
        if not self.source.live:  # a file is closed only once no read is running
            self.source.close()
