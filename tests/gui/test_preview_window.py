"""The window of ``run --preview``: it shows the run's frames, and closing it stops the run."""
from __future__ import annotations

import threading
import time

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from app.gui.preview_window import run_preview_window
from app.sinks.preview import PreviewSink


def test_closing_the_window_stops_the_run(qtbot):
    sink, stopped, sent, stopped_in_time = PreviewSink(), threading.Event(), [], []
    sink.open((64, 36), 30)

    deadline = time.monotonic() + 20  # a window that cannot stop the run fails the test instead of hanging it

    def work() -> int:  # a run that goes on until it is stopped, as a looping source does
        while not stopped.wait(0.01) and time.monotonic() < deadline:
            sink.send(np.full((36, 64, 3), len(sent) % 255, np.uint8))
            sent.append(1)
        stopped_in_time.append(stopped.is_set())
        return len(sent)

    def close_when_shown() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if w.windowTitle() == "Harmonicam preview"]
        if windows and windows[0].frames_shown >= 3:
            windows[0].close()
        else:
            QTimer.singleShot(20, close_when_shown)

    QTimer.singleShot(20, close_when_shown)
    count = run_preview_window(sink, work, stopped.set)
    assert stopped_in_time == [True] and count == len(sent) >= 3
