"""The virtual camera through the real pyvirtualcam.Camera with test backends."""
from __future__ import annotations

import pyvirtualcam
from gui_helpers import wait_applied, write_image
from PyQt6.QtCore import Qt

from app.sinks.virtual_camera import VirtualCameraError
from tests.vcam_backends import NO_DRIVER


def _choose_backend(window, name):
    combo = window.vcam_panel.backend_combo
    combo.setCurrentIndex(combo.findData(name))


def test_start_send_stop(open_window, qtbot, vcam_backends, tmp_path):
    window = open_window()
    _choose_backend(window, "harmonicam-test")
    window.vcam_panel.button.click()
    camera = vcam_backends.instances[-1]
    w, h = window.controller.source.size
    assert (camera.width, camera.height) == (w, h)
    qtbot.waitUntil(lambda: camera.count >= 5, timeout=10000)
    assert camera.last.size == w * h * 3  # RGB, flattened by pyvirtualcam
    window.refresh_stats()
    status = window.vcam_panel.status.text()
    assert "harmonicam-test" in status and "/dev/video-test" in status and f"{w} × {h}" in status
    assert "frames sent" in status and window.vcam_panel.button.text() == "Stop virtual camera"
    assert not window.vcam_panel.doctor.isVisible()

    # Another source keeps the camera at the size it was opened with.
    image = write_image(tmp_path / "still.png", size=(90, 60))
    with wait_applied(qtbot, window, "source"):
        window.source_panel.request(str(image))
    sent = camera.count
    qtbot.waitUntil(lambda: camera.count >= sent + 3, timeout=10000)
    assert camera.last.size == w * h * 3 and not camera.closed

    window.vcam_panel.button.click()
    assert camera.closed and window.controller.vcam is None
    assert window.controller.pipeline.sinks == []
    assert window.vcam_panel.status.text() == "Off"
    assert window.settings.vcam_backend == "harmonicam-test"


def test_mirror_output_only_mirrors_what_others_see(open_window, qtbot, vcam_backends):
    window = open_window()
    _choose_backend(window, "harmonicam-test")
    window.source_panel.mirror_output.setChecked(True)
    assert window.controller.pipeline.mirror_output and window.preview.mirror  # preview keeps its own switch
    window.source_panel.mirror_preview.setChecked(False)
    assert not window.preview.mirror and window.controller.pipeline.mirror_output


def test_shortcut_starts_and_stops(open_window, qtbot, vcam_backends):
    window = open_window()
    _choose_backend(window, "harmonicam-test")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.controller.vcam is not None
    qtbot.keyClick(window, Qt.Key.Key_Space, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.vcam is None and vcam_backends.instances[-1].closed


def test_no_driver_shows_the_fix(open_window, qtbot, vcam_backends):
    window = open_window()
    _choose_backend(window, "harmonicam-nodriver")
    window.vcam_panel.button.click()
    doctor = window.vcam_panel.doctor
    assert doctor.isVisible()
    expected = VirtualCameraError(f"'harmonicam-nodriver' backend: {NO_DRIVER}")
    assert expected.fix[1:] in doctor.text()
    assert "No v4l2 loopback device found" in doctor.text()
    assert "could not start" in window.message_bar.text()
    assert window.controller.vcam is None and window.vcam_panel.button.text() == "Start virtual camera"
    assert window.preview.view.frames_shown > 0 and window.controller.stream.alive  # the preview runs on


def test_backend_list_is_pyvirtualcams(open_window, vcam_backends):
    window = open_window()
    combo = window.vcam_panel.backend_combo
    listed = [combo.itemData(i) for i in range(1, combo.count())]
    assert listed == list(pyvirtualcam.camera.BACKENDS)
