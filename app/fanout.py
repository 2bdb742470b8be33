"""Sending each output frame to every sink, mirrored if asked; sinks change atomically between frames."""
from __future__ import annotations

import threading

import numpy as np

from app.sinks.base import Sink


class SinkFanout:
    """The sinks a pipeline sends to. :meth:`set_sinks` waits for a send in progress, so a sink removed
    (and then closed by its owner) is never sent to again."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self._lock = threading.Lock()
        self.sinks: list[Sink] = list(sinks or [])
        #: Flip the output horizontally (off by default: conferencing apps mirror only the self-view).
        self.mirror = False

    def set_sinks(self, sinks: list[Sink]) -> None:
        with self._lock:
            self.sinks = list(sinks)

    @property
    def realtime(self) -> bool:
        """Whether a sink consumes frames in real time (a virtual camera): a file then plays at its rate."""
        return any(sink.realtime for sink in self.sinks)

    def send(self, output: np.ndarray) -> None:
        with self._lock:
            output = output[:, ::-1] if self.mirror else output
            for sink in self.sinks:
                sink.send(output)
