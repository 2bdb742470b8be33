"""The sink interface: where finished frames go."""
from __future__ import annotations

import abc

import numpy as np


class Sink(abc.ABC):
    #: True when frames must be delivered in real time (virtual camera, preview).
    realtime: bool = False
    description = ""

    @abc.abstractmethod
    def open(self, size: tuple[int, int], fps: float) -> None:
        """Prepare for frames of ``size`` (width, height) at ``fps``."""

    @abc.abstractmethod
    def send(self, rgb: np.ndarray) -> None:
        """Deliver one RGB uint8 H×W×3 frame."""

    def readers(self) -> int | None:
        """How many apps read this output now; None when it cannot tell or always needs frames (files,
        previews). A stream whose outputs all say 0 pauses (see :mod:`app.idle`)."""
        return None

    def close(self, success: bool = True) -> None:
        """Finish; ``success`` False discards partial output."""


class NullSink(Sink):
    """Keeps the last frame in memory (benchmark floor and tests)."""

    description = "memory"

    def __init__(self) -> None:
        self.last: np.ndarray | None = None
        self.count = 0

    def open(self, size, fps):
        self.count = 0

    def send(self, rgb):
        self.last = np.ascontiguousarray(rgb)
        self.count += 1
