"""The window pauses the pipeline while no app reads the virtual camera and the user is elsewhere, says so,
and resumes for a reader, for the user or for the "keep working" checkbox; its frame rate caps a camera."""
from __future__ import annotations

import functools
import json
import sys
import time

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from app import idle
from app.gui.main_window import MainWindow
from app.gui.settings import SettingsStore, from_dict
from app.idle import PAUSED_TEXT
from app.sources.camera import CameraSource

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers are counted on Linux")
ACTIVE, INACTIVE = Qt.ApplicationState.ApplicationActive, Qt.ApplicationState.ApplicationInactive


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(idle, "PAUSE_AFTER_S", 0.05)
    monkeypatch.setattr(idle, "CHECK_S", 0.01)
    monkeypatch.setattr(idle, "KEEPALIVE_FPS", 50.0)


def start_vcam_on(window, node):
    """The test backend publishing to ``node``: a file that stands in for /dev/videoN (see test_readers)."""
    combo = window.vcam_panel.backend_combo
    combo.setCurrentIndex(combo.findData("harmonicam-test"))
    window.vcam_panel.device_edit.setText(str(node))
    window.vcam_panel.button.click()
    assert window.controller.vcam is not None


@linux
def test_paused_while_nobody_reads_and_the_user_is_elsewhere(open_window, qtbot, vcam_backends, quick, tmp_path):
    node = tmp_path / "video10"
    node.write_bytes(b"")
    window = open_window()
    window._application_state(ACTIVE)  # the user is setting things up in the window
    start_vcam_on(window, node)
    camera = vcam_backends.instances[-1]
    qtbot.waitUntil(lambda: camera.count >= 5, timeout=10000)
    times = window.controller.pipeline.times
    assert not times.paused  # nobody reads, but the preview is in use

    window._application_state(INACTIVE)  # the user went to another app
    qtbot.waitUntil(lambda: times.paused, timeout=10000)
    window.refresh_stats()
    assert window.fps_label.text() == PAUSED_TEXT
    assert PAUSED_TEXT in window.vcam_panel.status.text()
    sent = camera.count
    qtbot.waitUntil(lambda: camera.count >= sent + 3, timeout=10000)  # keep-alive frames for the browser
    shown = window.preview.view.frames_shown
    qtbot.wait(100)
    assert window.preview.view.frames_shown == shown  # no new picture: nothing is processed

    app = open(node, "rb")  # a call app opens the virtual camera
    try:
        qtbot.waitUntil(lambda: not times.paused, timeout=10000)
        qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown, timeout=10000)
        window.refresh_stats()
        assert "FPS" in window.fps_label.text() and PAUSED_TEXT not in window.fps_label.text()
        assert "In use by 1 app" in window.vcam_panel.status.text()
    finally:
        app.close()
    qtbot.waitUntil(lambda: times.paused, timeout=10000)

    window.vcam_panel.always_on.setChecked(True)  # "Keep working when no app uses it"
    qtbot.waitUntil(lambda: not times.paused, timeout=10000)
    assert window.settings.vcam_always_on
    qtbot.wait(100)
    window.refresh_stats()
    assert not times.paused and "No app is using it" in window.vcam_panel.status.text()


def test_nothing_pauses_while_the_virtual_camera_is_off(open_window, qtbot, quick):
    window = open_window()
    window._application_state(INACTIVE)
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 5, timeout=10000)
    assert not window.controller.pipeline.times.paused


def test_keep_working_is_saved(open_window, qtbot, settings_file):
    window = open_window()
    assert not window.vcam_panel.always_on.isChecked()  # default: pause when nobody reads
    window.vcam_panel.always_on.setChecked(True)
    window.close()
    assert json.loads(settings_file.read_text())["vcam_always_on"] is True
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    assert window.vcam_panel.always_on.isChecked() and window.settings.vcam_always_on
    window.close()
    assert from_dict({"vcam_always_on": "yes"})[1] == ["vcam_always_on"]


class SteadyCapture:
    """A camera that delivers frames as fast as it is read."""

    def isOpened(self):
        return True

    def read(self):
        time.sleep(0.001)
        return True, np.full((180, 320, 3), 90, np.uint8)

    def get(self, prop):
        return 0

    def set(self, prop, value):
        return True

    def release(self):
        pass


def test_the_frame_rate_caps_a_camera(qtbot, monkeypatch, settings_file):
    settings_file.write_text(json.dumps({"resolution": [320, 180], "source": "0", "fps": 15.0}))
    monkeypatch.setattr("app.sources.CameraSource",
                        functools.partial(CameraSource, opener=lambda device: SteadyCapture()))
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= 2, timeout=30000)
    assert window.controller.source.live and window.controller.stream.fps_cap == 15.0
    window.close()
