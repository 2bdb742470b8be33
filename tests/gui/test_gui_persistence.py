"""Settings survive a restart of the window; a damaged file is reported and replaced."""
from __future__ import annotations

import json

import pytest
from gui_helpers import wait_applied, write_image
from PyQt6.QtCore import Qt

from app.gui.main_window import MainWindow
from app.gui.preview import SPLIT
from app.gui.settings import SettingsStore


def _restart(qtbot, settings_file):
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= 2, timeout=30000)
    return window


def test_settings_survive_a_restart(open_window, qtbot, settings_file, tmp_path, vcam_backends):
    window = open_window()
    image = write_image(tmp_path / "mine.png")
    with wait_applied(qtbot, window, "background"):
        window.gallery.add_files([str(image)])
    with wait_applied(qtbot, window, "background"):
        window.gallery.set_colour("#336699")
    window.toggle_view(SPLIT)
    window.toggle_overlay()
    window.quality_panel.strength.setValue(35)
    window.quality_panel.keep_bright.setChecked(False)
    window.source_panel.mirror_output.setChecked(True)
    combo = window.vcam_panel.backend_combo
    combo.setCurrentIndex(combo.findData("harmonicam-test"))
    window.vcam_panel.device_edit.setText("/dev/video42")
    window.vcam_panel.button.click()
    window.close()

    saved = json.loads(settings_file.read_text())
    assert saved["background"] == "#336699" and saved["vcam_device"] == "/dev/video42"
    window = _restart(qtbot, settings_file)
    s = window.settings
    assert s.background == "#336699" and s.user_media == [str(image.resolve())]
    assert window.gallery.spec(window.gallery.list.currentItem()) == "#336699"
    assert any(i.data(Qt.ItemDataRole.UserRole + 1) == str(image.resolve()) for i in window.gallery.items())
    assert window.preview.mode == SPLIT and window.buttons["split"].isChecked()
    assert window.preview.overlay.isVisible()
    assert window.quality_panel.strength.value() == 35
    assert window.controller.pipeline.harmonizer.strength == pytest.approx(0.35)
    assert not window.quality_panel.keep_bright.isChecked() and not window.controller.pipeline.harmonizer.keep_bright
    assert window.controller.pipeline.mirror_output
    assert window.vcam_panel.backend_combo.currentData() == "harmonicam-test"
    assert window.vcam_panel.device_edit.text() == "/dev/video42"
    assert window.controller.vcam is None  # the camera is started by the user, never by a restart
    assert window.source_panel.resolution_combo.currentData() == tuple(s.resolution)


def test_damaged_settings_file(qtbot, settings_file):
    settings_file.write_text('{"resolution": [320, 180], "background": ')
    window = _restart(qtbot, settings_file)
    assert "damaged" in window.message_bar.text()
    bad = settings_file.with_name("settings.json.bad")
    assert bad.read_text() == '{"resolution": [320, 180], "background": '
    assert window.settings.background == "blur:1"
    window.close()
    assert json.loads(settings_file.read_text())["background"] == "blur:1"


def test_missing_background_file_falls_back(qtbot, settings_file, tmp_path):
    settings_file.write_text(json.dumps({"resolution": [320, 180], "background": str(tmp_path / "gone.jpg")}))
    window = _restart(qtbot, settings_file)
    qtbot.waitUntil(lambda: "could not be restored" in window.message_bar.text())
    assert window.settings.background == "blur:1"
