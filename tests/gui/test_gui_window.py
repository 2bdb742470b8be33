"""The window as a whole: start-up on the sample clip, preview, shortcuts, screenshot, closing."""
from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import Qt

from app.gui.launch import save_screenshot
from app.gui.preview import MASK, OUTPUT, SPLIT


def test_starts_on_sample_clip_without_camera(open_window, qtbot):
    window = open_window()
    assert window.controller.source_spec == "sample"
    assert "sample clip" in window.statusBar().currentMessage()
    assert "No camera found" in window.statusBar().currentMessage()
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= shown + 5, timeout=10000)
    assert window.source_panel.source_combo.currentData() == "sample"


def test_shortcuts(open_window, qtbot):
    window = open_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.preview.mode == SPLIT and window.buttons["split"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.preview.mode == MASK and not window.buttons["split"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.preview.mode == OUTPUT
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.preview.overlay.isVisible()
    qtbot.waitUntil(lambda: "FPS" in window.preview.overlay.text() and "matting" in window.preview.overlay.text())
    before = window.gallery.list.currentRow()
    with qtbot.waitSignal(window.controller.applied, check_params_cb=lambda w: w == "background"):
        qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.gallery.list.currentRow() == (before + 1) % window.gallery.list.count()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen)
    assert window.side.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not window.side.isHidden()


def test_mask_and_split_views_show_what_they_say(open_window, qtbot):
    from app.gui.preview import compose_view

    window = open_window()
    with qtbot.waitSignal(window.controller.frame_ready) as blocker:
        pass
    result = blocker.args[0]
    mask = compose_view(result, MASK, mirror=False)
    assert mask.shape == result.output.shape and np.all(mask[..., 0] == mask[..., 1])
    split = compose_view(result, SPLIT, mirror=False)
    half = split.shape[1] // 2
    assert np.array_equal(split[:, :half], result.frame.rgb[:, :half])
    assert np.array_equal(split[:, half:], result.output[:, half:])
    mirrored = compose_view(result, OUTPUT, mirror=True)
    assert np.array_equal(mirrored, result.output[:, ::-1])


def test_screenshot_is_not_blank(open_window, tmp_path):
    window = open_window()
    window.resize(1280, 800)
    path = tmp_path / "shot.png"
    save_screenshot(window, path, frames=window.preview.view.frames_shown + 3, timeout_s=30)
    image = cv2.imread(str(path))
    assert image.shape[:2] == (800, 1280)
    assert image.std() > 20  # a real picture, not one flat colour
    preview = window.preview.view
    top_left = preview.mapTo(window, preview.rect().topLeft())
    inside = image[top_left.y():top_left.y() + preview.height(), top_left.x():top_left.x() + preview.width()]
    assert inside.std() > 10  # the video itself was drawn


def test_screenshot_command(qtbot, tmp_path, isolated_home):
    from app.cli import main

    path = tmp_path / "readme.png"
    assert main(["gui", "--screenshot", str(path)]) == 0
    assert cv2.imread(str(path)).std() > 20
    assert not (isolated_home / "harmonicam" / "settings.json").exists()  # the user's settings are not touched


def test_no_display_is_one_sentence(monkeypatch, capsys):
    from app.cli import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([]) == 1  # where it runs, not how it was called: a runtime failure
    err = capsys.readouterr().err
    assert "no desktop display" in err and "QT_QPA_PLATFORM=offscreen" in err
    assert "'harmonicam run --output FILE'" in err and err.count("\n") == 1


def test_close_stops_everything(open_window, qtbot, vcam_backends):
    window = open_window()
    window.vcam_panel.backend_combo.setCurrentIndex(window.vcam_panel.backend_combo.findData("harmonicam-test"))
    window.vcam_panel.button.click()
    camera = vcam_backends.instances[-1]
    stream = window.controller.stream
    window.close()
    assert camera.closed
    assert not stream.alive
    assert window.controller.pipeline.sinks == []
    assert window.controller.vcam is None

