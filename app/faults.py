"""What a failing stage costs: one frame's fallback and one sentence; a failing device costs the GPU.

A blend that raises is replaced for that frame by linear blending and a
harmonizer by the plain composite. Each failure is reported once per stage put
in its slot (a swap starts the slot afresh), so a stage that keeps failing does
not flood the log. A device failure (out of memory, a lost GPU) is not the
stage's fault: it goes up to the pipeline, which rebuilds its device-bound
stages on the CPU and redoes the frame, on the whole-frame and the overlapped
paths alike (:mod:`app.pipeline`).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from models.ops.device_faults import is_device_failure

log = logging.getLogger(__name__)


class Faults:
    """Failures reported once per slot ("blend", "harmonizer", "device") until the slot gets a new stage;
    the sentences wait for the window in :meth:`take`. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._sentences: list[str] = []

    def forget(self, *slots: str) -> None:
        """The slots hold new stages: their first failure is reported again."""
        with self._lock:
            self._reported.difference_update(slots)

    def report(self, slot: str, text: str) -> None:
        """Log ``text`` and keep it for the window, unless this slot's stage has been reported already."""
        with self._lock:
            if slot in self._reported:
                return
            self._reported.add(slot)
            self._sentences.append(text)
        log.warning("%s", text, exc_info=log.isEnabledFor(logging.DEBUG))

    def guarded(self, slot: str, stage: object, run: Callable[[], Any], fallback: Callable[[], Any],
                instead: str) -> Any:
        """``run()``, or — when the stage raises — ``fallback()`` for this frame, reported once.
        A device failure is raised on, for the pipeline to move to the CPU."""
        try:
            return run()
        except Exception as exc:
            if is_device_failure(exc):
                raise
            self.report(slot, f"the {type(stage).__name__} {slot} failed ({exc}); {instead}")
            return fallback()

    def take(self) -> list[str]:
        """Sentences about stages that failed since the last call."""
        with self._lock:
            sentences, self._sentences = self._sentences, []
        return sentences
