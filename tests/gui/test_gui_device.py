"""The device choice: Auto / CPU / CUDA in the quality panel; a switch rebuilds the whole pipeline."""
from __future__ import annotations

import json

import pytest
import torch
from gui_helpers import wait_applied, wait_failed
from PyQt6.QtCore import Qt

from app.errors import RuntimeFailure
from app.gui.main_window import MainWindow
from app.gui.quality_panel import DEVICE_TIPS, QualityPanel
from app.gui.settings import Settings, SettingsStore, device_problem, from_dict
from app.pipeline import Pipeline
from models import registry


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine has no GPU, whatever machine runs the test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _activate(combo, name):
    index = combo.findData(name)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _items(combo):
    return [(combo.itemData(i), combo.itemText(i), combo.model().item(i).isEnabled(),
             combo.itemData(i, Qt.ItemDataRole.ToolTipRole)) for i in range(combo.count())]


def _frames_keep_coming(qtbot, window, count=3):
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= shown + count, timeout=15000)


def test_the_combo_lists_the_devices_and_disables_cuda(no_cuda, open_window):
    window = open_window()
    combo = window.quality_panel.device
    (auto, cpu, cuda) = _items(combo)
    assert [auto[0], cpu[0], cuda[0]] == ["auto", "cpu", "cuda"]
    assert auto[1] == "Auto" and cpu[1] == "CPU" and cuda[1].startswith("CUDA (GPU)")
    assert auto[2] and cpu[2] and not cuda[2]
    reason = device_problem("cuda")
    assert reason and cuda[3] == reason and "unavailable" in cuda[1]
    assert combo.currentData() == window.settings.device == "auto"
    # Auto means the CPU here, and the window says so.
    assert window.controller.pipeline.device == window.controller.device == "cpu"
    window.refresh_stats()
    assert window.fps_label.text().endswith("· CPU")


def test_cuda_is_offered_when_pytorch_has_it(qtbot, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    panel = QualityPanel(Settings())
    qtbot.addWidget(panel)
    cuda = _items(panel.device)[2]
    assert cuda == ("cuda", "CUDA (GPU)", True, DEVICE_TIPS["cuda"])


def test_switching_rebuilds_the_pipeline_and_is_remembered(no_cuda, open_window, qtbot, settings_file,
                                                           vcam_backends):
    window = open_window()
    c = window.controller
    old, spec = c.pipeline, c.source_spec
    closed = []
    close = old.close
    old.close = lambda: (closed.append(old), close())  # a spy; the real close still runs
    combo = window.vcam_panel.backend_combo
    combo.setCurrentIndex(combo.findData("harmonicam-test"))
    window.vcam_panel.button.click()
    camera = vcam_backends.instances[-1]
    assert c.pipeline.sinks == [c.vcam]

    with wait_applied(qtbot, window, "device"):
        _activate(window.quality_panel.device, "cpu")
    new = c.pipeline
    assert isinstance(new, Pipeline) and new is not old and new.device == "cpu"
    assert new.matting is not old.matting and new.harmonizer is not old.harmonizer
    assert closed == [old]
    assert c.stream.pipeline is new and c.source_spec == spec
    assert window.settings.device == "cpu" and window.quality_panel.device.currentData() == "cpu"
    _frames_keep_coming(qtbot, window)
    # The virtual camera moved over to the new pipeline and keeps getting frames.
    assert new.sinks == [c.vcam] and old.sinks == []
    sent = camera.count
    qtbot.waitUntil(lambda: camera.count >= sent + 3, timeout=10000)
    assert not camera.closed

    window.close()
    assert json.loads(settings_file.read_text())["device"] == "cpu"
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.preview.view.frames_shown >= 2, timeout=30000)
    assert window.settings.device == "cpu" and window.quality_panel.device.currentData() == "cpu"
    assert window.controller.pipeline.device == "cpu"


def test_a_failed_rebuild_keeps_the_old_pipeline(no_cuda, open_window, qtbot, monkeypatch):
    window = open_window()
    c = window.controller
    old, stream = c.pipeline, c.stream

    def fail(*args, **kwargs):
        raise RuntimeFailure("the GPU ran out of memory; close other apps that use it")

    monkeypatch.setattr("app.gui.controller.build_pipeline", fail)
    with wait_failed(qtbot, window, "device") as blocker:
        _activate(window.quality_panel.device, "cpu")
    assert blocker.args == ["device", "the GPU ran out of memory; close other apps that use it"]
    assert c.pipeline is old and c.stream is stream and stream.alive
    assert window.settings.device == "auto" and window.quality_panel.device.currentData() == "auto"
    assert "ran out of memory" in window.message_bar.text()
    _frames_keep_coming(qtbot, window)


def test_a_saved_device_this_machine_lacks(no_cuda, qtbot, settings_file):
    settings_file.write_text(json.dumps({"resolution": [320, 180], "device": "cuda"}))
    window = MainWindow(SettingsStore(settings_file))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "saved device" in window.message_bar.text(), timeout=30000)
    assert window.controller.pipeline.device == "cpu"
    assert window.settings.device == "auto" and window.quality_panel.device.currentData() == "auto"


def test_an_unknown_saved_device_is_reset():
    settings, invalid = from_dict({"device": "tpu", "matting": "mediapipe"})
    assert settings.device == "auto" and invalid == ["device"]
    assert from_dict({"device": "cpu"}) == (Settings(device="cpu"), [])


def test_a_switch_right_after_a_stage_change_keeps_that_change(no_cuda, open_window, qtbot):
    """The rebuild runs right after the harmonizer job, before the window has stored its change."""
    window = open_window()
    c = window.controller
    with wait_applied(qtbot, window, "device"):
        c.set_harmonizer("reinhard", None)
        c.set_device("cpu")
    assert window.settings.harmonizer == "reinhard"
    assert isinstance(c.pipeline.harmonizer, registry.entry("harmonizer", "reinhard").factory)
    _frames_keep_coming(qtbot, window)
