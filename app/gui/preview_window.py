"""The window of ``harmonicam run --preview``: Qt's event loop on the main thread, the pipeline on a worker."""
from __future__ import annotations

import sys
import threading
from typing import Callable

from app.sinks.preview import PreviewSink


def run_preview_window(sink: PreviewSink, work: Callable[[], int], stop: Callable[[], None]) -> int:
    """Run ``work()`` on a thread while a window shows ``sink``'s frames; closing the window calls ``stop()``.

    The window runs an event loop of its own, not the application's: quitting the application from a timer
    left a quit pending that ended every later event loop of the process at once (a window opened after
    this one never showed a frame)."""
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    from app.gui.video_view import VideoView

    app = QApplication.instance() or QApplication(sys.argv[:1])
    view = VideoView()
    view.setWindowTitle("Harmonicam preview")
    view.resize(960, 540)
    view.show()
    result: dict[str, object] = {}

    def target():
        try:
            result["count"] = work()
        except BaseException as exc:  # handed to the main thread
            result["error"] = exc

    worker = threading.Thread(target=target, name="pipeline", daemon=True)
    timer, loop = QTimer(), QEventLoop(app)

    def poll():
        frame = sink.take()
        if frame is not None:
            view.show_frame(frame)
        if not view.isVisible():  # closed (by the user, or on a signal): the run stops
            stop()
        if not worker.is_alive():
            loop.quit()

    timer.timeout.connect(poll)
    timer.start(15)
    worker.start()
    try:
        loop.exec()
    finally:
        timer.stop()
        view.close()
    stop()
    worker.join()
    if "error" in result:
        raise result["error"]
    return int(result.get("count", 0))
