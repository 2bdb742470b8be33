"""Source switching, and a camera that disappears and comes back."""
from __future__ import annotations

import functools
import threading
import time

import cv2
import numpy as np
from gui_helpers import wait_applied, wait_failed, write_image

from app.sources.camera import CameraSource


def test_switch_to_image_and_back(open_window, qtbot, tmp_path):
    window = open_window()
    image = write_image(tmp_path / "still.png", size=(200, 120))
    with wait_applied(qtbot, window, "source"):
        window.source_panel.request(str(image))
    controller = window.controller
    assert controller.source_spec == str(image)
    assert controller.source.description == "image still.png"
    assert controller.source.size == tuple(window.settings.resolution)  # cover-fit to the chosen size
    assert window.source_panel.source_combo.currentText() == "Image: still.png"
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 3)
    assert "still.png" in window.statusBar().currentMessage()

    with wait_applied(qtbot, window, "source"):
        window.source_panel.request("sample")
    assert controller.source_spec == "sample" and window.settings.source == "sample"


def test_missing_file_keeps_the_running_source(open_window, qtbot, tmp_path):
    window = open_window()
    stream = window.controller.stream
    with wait_failed(qtbot, window, "source"):
        window.source_panel.request(str(tmp_path / "gone.mp4"))
    assert "does not exist" in window.message_bar.text()
    assert window.controller.stream is stream and stream.alive
    assert window.source_panel.source_combo.currentData() == "sample"


class FakeCapture:
    """A cv2.VideoCapture stand-in whose camera can be unplugged (``plugged`` cleared)."""

    def __init__(self, plugged: threading.Event) -> None:
        self.plugged = plugged
        self.frame = np.full((90, 160, 3), 90, np.uint8)
        cv2.circle(self.frame, (80, 45), 30, (200, 180, 160), -1)

    def isOpened(self):
        return self.plugged.is_set()

    def read(self):
        time.sleep(1 / 60)
        return (True, self.frame.copy()) if self.plugged.is_set() else (False, None)

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 160, cv2.CAP_PROP_FRAME_HEIGHT: 90}.get(prop, 0)

    def set(self, prop, value):
        return True

    def release(self):
        pass


def test_camera_lost_and_back(qtbot, monkeypatch, settings_file):
    from app.gui.main_window import MainWindow
    from app.gui.settings import SettingsStore

    plugged = threading.Event()
    plugged.set()
    monkeypatch.setattr("app.gui.controller.cameras", lambda: [("0", "Test Cam")])
    monkeypatch.setattr("app.sources.CameraSource",
                        functools.partial(CameraSource, opener=lambda device: FakeCapture(plugged),
                                          reopen_interval=0.05))
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= 3, timeout=30000)
    assert window.controller.source_spec == "0"
    assert window.source_panel.source_combo.currentText() == "Camera 0: Test Cam"

    plugged.clear()
    qtbot.waitUntil(lambda: "stopped delivering frames" in window.message_bar.text(), timeout=10000)
    plugged.set()
    qtbot.waitUntil(lambda: "is back" in window.statusBar().currentMessage(), timeout=10000)
    assert not window.message_bar.isVisible()
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 3)
    stream = window.controller.stream
    plugged.clear()  # closing while the camera is gone must not hang
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=10000)
    window.close()
    assert not stream.alive
