"""Quality controls: the device the pipeline runs on, matting backend and model file, blending,
harmonizer and its weights, harmonization strength and "keep my face bright", temporal smoothing and
edge refinement.

Every list comes from the model registry. An entry that is not usable is shown
disabled with the reason, unless a file the user picks can make it usable
(its factory takes ``model_path`` / ``weights``): then choosing it asks for the file.
A device that this machine lacks (CUDA without a GPU) is shown the same way.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.assemble import AUTO, default_blend
from app.gui.settings import DEVICES, Settings, device_problem
from models import registry

#: Per kind: the factory option that takes a user file, and the Settings field that remembers it.
FILE_OPTIONS = {"matting": ("model_path", "matting_model"), "harmonizer": ("weights", "harmonizer_weights")}
MODEL_FILTER = "Model files (*.onnx *.tflite *.pth *.pt *.safetensors);;All files (*)"
SMOOTHING_MAX_S = 0.5
#: The device combo's labels, by DEVICES entry.
DEVICE_LABELS = {"auto": "Auto", "cpu": "CPU", "cuda": "CUDA (GPU)"}
DEVICE_TIPS = {"auto": "The GPU (CUDA) when this machine has one, else the CPU",
               "cpu": "Runs on every machine", "cuda": "The NVIDIA GPU, through PyTorch's CUDA"}


def takes_file(kind: str, name: str) -> bool:
    """Whether the registry entry's factory accepts a user file (FILE_OPTIONS)."""
    option = FILE_OPTIONS.get(kind, (None,))[0]
    try:
        return option in inspect.signature(registry.entry(kind, name).factory).parameters
    except (TypeError, ValueError):  # a factory without an introspectable signature
        return False


class ModelCombo(QComboBox):
    """The registry's entries of one kind; ``needs_file(name)`` tells whether choosing it must ask for a file."""

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self._needs_file: set[str] = set()
        if kind == "blend":  # the device decides: what wins on real footage and keeps real time there
            gpu, cpu = default_blend("cuda"), default_blend("cpu")
            self.addItem(f"auto ({cpu})" if gpu == cpu else f"auto ({gpu} on a GPU, {cpu} on a CPU)", AUTO)
            self.setItemData(0, "the blend that wins on held-out real footage and keeps real time on the device; "
                             "linear blending where none does", Qt.ItemDataRole.ToolTipRole)
        for name, usable, reason in registry.available(kind):
            fixable = not usable and takes_file(kind, name)
            label = name if usable else f"{name} ({'choose a file' if fixable else 'unavailable'})"
            self.addItem(label, name)
            index = self.count() - 1
            self.setItemData(index, reason, Qt.ItemDataRole.ToolTipRole)
            if fixable:
                self._needs_file.add(name)
            elif not usable:
                self.model().item(index).setEnabled(False)

    def needs_file(self, name: str) -> bool:
        return name in self._needs_file

    def select(self, name: str) -> None:
        self.setCurrentIndex(max(0, self.findData(name)))


class DeviceCombo(QComboBox):
    """Auto, CPU, CUDA; a device this machine lacks is disabled, with the reason as its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        for name in DEVICES:
            problem = device_problem(name)
            self.addItem(DEVICE_LABELS[name] + (" (unavailable)" if problem else ""), name)
            index = self.count() - 1
            self.setItemData(index, problem or DEVICE_TIPS[name], Qt.ItemDataRole.ToolTipRole)
            if problem:
                self.model().item(index).setEnabled(False)

    def select(self, name: str) -> None:
        self.setCurrentIndex(max(0, self.findData(name)))


class QualityPanel(QWidget):
    #: (kind, name, file or None) for "matting" or "harmonizer"; (kind, name, None) for "blend".
    stage_requested = pyqtSignal(str, str, object)
    strength_changed = pyqtSignal(float)
    keep_bright_changed = pyqtSignal(bool)
    #: (smoothing seconds, refine)
    matte_changed = pyqtSignal(float, bool)
    #: A DEVICES entry other than the one that runs.
    device_requested = pyqtSignal(str)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.device = DeviceCombo()
        self.device.setToolTip("Where the models run; changing it rebuilds the pipeline")
        self.device.activated.connect(self._on_device)
        self.combos = {kind: ModelCombo(kind) for kind in ("matting", "blend", "harmonizer")}
        self.file_labels: dict[str, QLabel] = {}
        self.file_buttons: dict[str, tuple[QPushButton, QPushButton]] = {}
        for kind, combo in self.combos.items():
            combo.activated.connect(lambda _, k=kind: self._on_combo(k))

        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.valueChanged.connect(self._on_strength)
        self.strength_label = QLabel()
        self.keep_bright = QCheckBox("Keep my face bright")
        self.keep_bright.setToolTip("Harmonization darkens you only part of the way to a darker background and keeps "
                                    "most of your contrast")
        self.keep_bright.toggled.connect(self.keep_bright_changed)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, round(SMOOTHING_MAX_S * 100))
        self.smoothing.setToolTip("How long the matte takes to follow motion: more is steadier, less is snappier")
        self.smoothing_label = QLabel()
        self.refine = QCheckBox("Refine edges (guided filter)")
        self._matte_timer = QTimer(self, singleShot=True, interval=150)  # one rebuild per slider gesture
        self._matte_timer.timeout.connect(
            lambda: self.matte_changed.emit(self.smoothing.value() / 100, self.refine.isChecked()))
        self.smoothing.valueChanged.connect(self._on_matte)
        self.refine.toggled.connect(self._on_matte)

        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Matting", self.combos["matting"])
        form.addRow("Model file", self._file_row("matting", "Choose a matting model file"))
        form.addRow("Blending", self.combos["blend"])
        form.addRow("Harmonizer", self.combos["harmonizer"])
        form.addRow("Weights", self._file_row("harmonizer", "Choose harmonizer weights"))
        form.addRow("Strength", self._slider_row(self.strength, self.strength_label))
        form.addRow("", self.keep_bright)
        form.addRow("Smoothing", self._slider_row(self.smoothing, self.smoothing_label))
        form.addRow("", self.refine)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addStretch(1)
        self.show_settings()

    @staticmethod
    def _slider_row(slider: QSlider, label: QLabel) -> QHBoxLayout:
        label.setMinimumWidth(48)
        row = QHBoxLayout()
        row.addWidget(slider, 1)
        row.addWidget(label)
        return row

    def _file_row(self, kind: str, title: str) -> QHBoxLayout:
        label = QLabel()
        label.setObjectName("hint")
        choose = QPushButton("Choose…")
        choose.clicked.connect(lambda: self.choose_file(kind, title))
        clear = QPushButton("Default")
        clear.setToolTip("Use the backend's own model again")
        clear.clicked.connect(lambda: self._request(kind, self.combos[kind].currentData(), None))
        self.file_labels[kind] = label
        self.file_buttons[kind] = (choose, clear)
        row = QHBoxLayout()
        row.addWidget(label, 1)
        row.addWidget(choose)
        row.addWidget(clear)
        return row

    def show_settings(self) -> None:
        """Show what runs (after a start, a change or a failed change)."""
        s = self.settings
        self.device.select(s.device)
        for kind, combo in self.combos.items():
            combo.select(getattr(s, kind))
        for kind, (_, field) in FILE_OPTIONS.items():
            name = self.combos[kind].currentData()
            path = getattr(s, field)
            self.file_labels[kind].setText(Path(path).name if path else "built in")
            self.file_labels[kind].setToolTip(path or "")
            choose, clear = self.file_buttons[kind]
            choose.setEnabled(takes_file(kind, name))
            clear.setEnabled(bool(path) and not self.combos[kind].needs_file(name))
        for widget in (self.strength, self.keep_bright, self.smoothing, self.refine):
            widget.blockSignals(True)
        self.strength.setValue(round(s.strength * 100))
        self.keep_bright.setChecked(s.keep_bright)
        self.smoothing.setValue(round(s.smoothing_s * 100))
        self.refine.setChecked(s.refine)
        for widget in (self.strength, self.keep_bright, self.smoothing, self.refine):
            widget.blockSignals(False)
        self._show_values()

    def _show_values(self) -> None:
        self.strength_label.setText(f"{self.strength.value()} %")
        seconds = self.smoothing.value() / 100
        self.smoothing_label.setText(f"{seconds:.2f} s" if seconds else "off")

    def _on_combo(self, kind: str) -> None:
        name = self.combos[kind].currentData()
        if name == getattr(self.settings, kind):
            return
        if self.combos[kind].needs_file(name):
            path = self._ask_file(f"{name} needs a file")
            if path is None:
                self.show_settings()
                return
            self._request(kind, name, path)
        else:
            self._request(kind, name, None)  # a file picked for another backend does not carry over

    def _on_device(self, _index: int) -> None:
        name = self.device.currentData()
        if name != self.settings.device:
            self.device_requested.emit(name)

    def choose_file(self, kind: str, title: str) -> None:
        path = self._ask_file(title)
        if path is not None:
            self._request(kind, self.combos[kind].currentData(), path)

    def _ask_file(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, str(Path.home()), MODEL_FILTER)
        return path or None

    def _request(self, kind: str, name: str, path: str | None) -> None:
        self.stage_requested.emit(kind, name, path)

    def _on_strength(self, value: int) -> None:
        self._show_values()
        self.strength_changed.emit(value / 100)

    def _on_matte(self, *_) -> None:
        self._show_values()
        self._matte_timer.start()
