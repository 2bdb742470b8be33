"""The sink behind ``harmonicam run --preview``: holds the newest frame for a window to show.

It knows nothing of Qt; the window and its event loop are in :mod:`app.gui.preview_window`.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

from app.errors import RuntimeFailure
from app.sinks.base import Sink


def require_display() -> None:
    """Qt aborts the process without a display; say so in a sentence instead.

    A missing display is a fault of where the command runs, not of its options: a runtime failure (exit 1).
    """
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise RuntimeFailure("no desktop display is available (DISPLAY is not set); run from a desktop session, "
                             "render the window offscreen with QT_QPA_PLATFORM=offscreen, or write a file "
                             "without a window with 'harmonicam run --output FILE'")


class PreviewSink(Sink):
    """Holds the newest frame; the window shows it at screen pace."""

    realtime = True
    description = "preview window"

    def __init__(self) -> None:
        require_display()
        self._lock = threading.Lock()
        self._latest: np.ndarray | None = None

    def open(self, size, fps):
        pass

    def send(self, rgb):
        with self._lock:
            self._latest = rgb

    def take(self) -> np.ndarray | None:
        with self._lock:
            frame, self._latest = self._latest, None
        return frame
