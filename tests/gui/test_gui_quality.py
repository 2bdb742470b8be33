"""Quality controls: the combos list the registry, switch stages, and sliders reach the pipeline."""
from __future__ import annotations

import pytest
from gui_helpers import wait_applied, wait_failed
from PyQt6.QtCore import Qt

from models import registry
from models.matting import DEFAULT_MATTING
from models.harmonizers.base import Harmonizer


class PlainHarmonizer(Harmonizer):
    """Stands in for a harmonizer that no file can make usable (e.g. it needs a GPU)."""

    def harmonize(self, composite, background, frame, state):
        return composite.image


class WeightsHarmonizer(PlainHarmonizer):
    """Stands in for a harmonizer that is usable only with a weights file."""

    def __init__(self, strength=1.0, device="cpu", weights=None, runtime="torch"):
        super().__init__(strength, device, runtime)
        self.weights = weights


@pytest.fixture
def extra_harmonizers(monkeypatch):
    """Two more registry entries, for this test only: one unusable, one that needs weights."""
    registry.names("harmonizer")  # load the built-in entries first
    monkeypatch.setattr(registry, "_ENTRIES", {k: dict(v) for k, v in registry._ENTRIES.items()})
    registry.register("harmonizer", "test-unusable", "x", check=lambda: "needs a GPU")(PlainHarmonizer)
    registry.register("harmonizer", "test-weights", "x", check=lambda: "needs --harmonizer-weights")(
        WeightsHarmonizer)


def _activate(combo, name):
    index = combo.findData(name)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_combos_list_the_registry_and_switch(open_window, qtbot):
    window = open_window()
    panel, s = window.quality_panel, window.settings
    for kind, combo in panel.combos.items():
        listed = [combo.itemData(i) for i in range(combo.count())]
        assert listed == (["auto"] if kind == "blend" else []) + registry.names(kind)
        for name, usable, _ in registry.available(kind):
            if not usable or name == getattr(s, kind):
                continue
            default = getattr(s, kind)
            with wait_applied(qtbot, window, kind):
                _activate(combo, name)
            assert getattr(s, kind) == name
            with wait_applied(qtbot, window, kind):
                _activate(combo, default)
    assert s.matting == DEFAULT_MATTING
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 2)


def test_unusable_entries_and_weights(open_window, qtbot, extra_harmonizers, monkeypatch, tmp_path):
    window = open_window()
    combo = window.quality_panel.combos["harmonizer"]
    unusable = combo.findData("test-unusable")
    assert not combo.model().item(unusable).isEnabled()
    assert combo.itemData(unusable, Qt.ItemDataRole.ToolTipRole) == "needs a GPU"
    needs_file = combo.findData("test-weights")
    assert combo.model().item(needs_file).isEnabled() and "choose a file" in combo.itemText(needs_file)

    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"w")
    monkeypatch.setattr("app.gui.quality_panel.QFileDialog.getOpenFileName", lambda *a, **k: (str(weights), ""))
    with wait_applied(qtbot, window, "harmonizer"):
        _activate(combo, "test-weights")
    harmonizer = window.controller.pipeline.harmonizer
    assert isinstance(harmonizer, WeightsHarmonizer) and harmonizer.weights == str(weights)
    assert window.settings.harmonizer_weights == str(weights)
    assert window.quality_panel.file_labels["harmonizer"].text() == "weights.pth"

    monkeypatch.setattr("app.gui.quality_panel.QFileDialog.getOpenFileName", lambda *a, **k: ("", ""))
    _activate(combo, "test-weights")  # already running: nothing to do
    with wait_applied(qtbot, window, "harmonizer"):
        _activate(combo, "none")
    assert window.settings.harmonizer_weights is None  # a file does not carry over to another harmonizer


def test_bad_model_file_keeps_the_running_matting(open_window, qtbot, monkeypatch, tmp_path):
    window = open_window()
    before = window.controller.pipeline.matting
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    monkeypatch.setattr("app.gui.quality_panel.QFileDialog.getOpenFileName", lambda *a, **k: (str(bogus), ""))
    combo = window.quality_panel.combos["matting"]
    with wait_failed(qtbot, window, "matting"):
        _activate(combo, "onnx")  # needs a file: the (patched) dialog asks for it
    assert "model.onnx" in window.message_bar.text()
    assert window.controller.pipeline.matting is before
    assert combo.currentData() == window.settings.matting == DEFAULT_MATTING


def test_sliders_reach_the_pipeline(open_window, qtbot):
    window = open_window()
    panel, pipeline = window.quality_panel, window.controller.pipeline
    panel.strength.setValue(40)
    assert pipeline.harmonizer.strength == pytest.approx(0.4)
    assert panel.strength_label.text() == "40 %"
    assert panel.keep_bright.isChecked() and pipeline.harmonizer.keep_bright  # on by default
    panel.keep_bright.setChecked(False)
    assert not pipeline.harmonizer.keep_bright and not window.settings.keep_bright
    panel.smoothing.setValue(20)
    qtbot.waitUntil(lambda: pipeline.postprocess.options.smoothing_s == pytest.approx(0.2))
    assert not panel.refine.isChecked()  # off by default (chosen on real footage)
    panel.refine.setChecked(True)
    qtbot.waitUntil(lambda: pipeline.postprocess.options.refine)
    assert window.settings.smoothing_s == pytest.approx(0.2) and window.settings.refine


def test_a_harmonizer_failing_while_running_is_reported_and_the_video_goes_on(open_window, qtbot):
    window = open_window()
    controller = window.controller
    messages = []
    controller.message.connect(lambda text, error: messages.append((text, error)))

    class Failing(PlainHarmonizer):
        def harmonize(self, composite, background, frame, state):
            raise RuntimeError("weights went bad")

    controller.pipeline.set_harmonizer(Failing())
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: any("without harmonization" in t and e for t, e in messages), timeout=10000)
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 3, timeout=10000)
