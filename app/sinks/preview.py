"""A preview window for ``harmonicam run --preview`` (Qt, the pipeline on a worker thread)."""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable

import numpy as np

from app.errors import UsageError
from app.sinks.base import Sink


def require_display() -> None:
    """Qt aborts the process without a display; say so in a sentence instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise UsageError("no desktop display is available (DISPLAY is not set); run from a desktop session, "
                         "or use 'harmonicam run --output FILE' without a window")


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

    def run_window(self, work: Callable[[threading.Event], int]) -> int:
        """Run ``work(stop)`` on a thread while a window shows frames; closing the window stops it."""
        from PyQt6.QtCore import QTimer
        from PyQt6.QtWidgets import QApplication

        from app.gui.video_view import VideoView

        app = QApplication.instance() or QApplication(sys.argv[:1])
        view = VideoView()
        view.setWindowTitle("Harmonicam preview")
        view.resize(960, 540)
        view.show()
        stop = threading.Event()
        result: dict[str, object] = {}

        def target():
            try:
                result["count"] = work(stop)
            except BaseException as exc:  # handed to the main thread
                result["error"] = exc

        worker = threading.Thread(target=target, name="pipeline", daemon=True)
        timer = QTimer()

        def poll():
            frame = self.take()
            if frame is not None:
                view.show_frame(frame)
            if not worker.is_alive():
                app.quit()

        timer.timeout.connect(poll)
        timer.start(15)
        worker.start()
        app.lastWindowClosed.connect(stop.set)
        app.exec()
        stop.set()
        worker.join()
        if "error" in result:
            raise result["error"]
        return int(result.get("count", 0))
