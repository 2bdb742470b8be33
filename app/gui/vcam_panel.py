"""The virtual camera box: start/stop, what it sends, and — when it cannot start — the
"virtual camera doctor": pyvirtualcam's exact reason and the fix for this OS."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import HarmonicamError
from app.gui.controller import VirtualCameraOutput
from app.gui.settings import Settings
from app.idle import PAUSED_TEXT
from app.sinks.virtual_camera import VirtualCameraError, backends

AUTOMATIC = "Automatic"


def doctor_text(error: HarmonicamError) -> str:
    """What went wrong and what to do, for the window."""
    if isinstance(error, VirtualCameraError):
        lines = ["The virtual camera could not start.", f"Fix: {error.fix[:1].upper()}{error.fix[1:]}."]
        if error.detail:
            lines.append(f"Details from pyvirtualcam: {error.detail}")
        return "\n".join(lines)
    text = str(error)
    return f"The virtual camera could not start: {text}."


class VirtualCameraPanel(QGroupBox):
    #: (backend or None, device or None)
    start_requested = pyqtSignal(object, object)
    stop_requested = pyqtSignal()
    #: Keep working while no app reads the camera (True), or pause then (False).
    always_on_changed = pyqtSignal(bool)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("Virtual camera", parent)
        self.settings = settings
        self.backend_combo = QComboBox()
        self.backend_combo.addItem(AUTOMATIC, None)
        for name in backends():
            self.backend_combo.addItem(name, name)
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(settings.vcam_backend)))
        self.device_edit = QLineEdit(settings.vcam_device or "")
        self.device_edit.setPlaceholderText("automatic (e.g. /dev/video10)")
        self.button = QPushButton()
        self.button.setObjectName("primary")
        self.button.setMinimumHeight(38)
        self.button.clicked.connect(self.toggle)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.doctor = QLabel()
        self.doctor.setObjectName("doctor")
        self.doctor.setWordWrap(True)
        self.doctor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.doctor.hide()
        self.always_on = QCheckBox("Keep working when no app uses it")
        self.always_on.setToolTip("Off: while no app reads the virtual camera and you are not using this window, "
                                  "Harmonicam pauses and saves power; it resumes as soon as an app opens the camera")
        self.always_on.setChecked(settings.vcam_always_on)
        self.always_on.toggled.connect(self.always_on_changed)
        hint = QLabel("Start it before you open Zoom, Teams or Meet so that they find it.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Backend", self.backend_combo)
        form.addRow("Device", self.device_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(self.button)
        layout.addWidget(self.status)
        layout.addWidget(self.doctor)
        layout.addLayout(form)
        layout.addWidget(self.always_on)
        layout.addWidget(hint)
        self.running: VirtualCameraOutput | None = None
        self.show_running(None)

    def toggle(self) -> None:
        if self.running is not None:
            self.stop_requested.emit()
        else:
            self.settings.vcam_backend = self.backend_combo.currentData()
            self.settings.vcam_device = self.device_edit.text().strip() or None
            self.start_requested.emit(self.settings.vcam_backend, self.settings.vcam_device)

    def show_running(self, vcam: VirtualCameraOutput | None) -> None:
        self.running = vcam
        self.button.setText("Stop virtual camera" if vcam else "Start virtual camera")
        self.button.setProperty("active", vcam is not None)
        self.button.style().unpolish(self.button)  # re-read the stylesheet for the new property
        self.button.style().polish(self.button)
        self.backend_combo.setEnabled(vcam is None)
        self.device_edit.setEnabled(vcam is None)
        if vcam is not None:
            self.doctor.hide()
        self.refresh()

    def show_problem(self, error: HarmonicamError) -> None:
        self.doctor.setText(doctor_text(error))
        self.doctor.show()

    def refresh(self, paused: bool = False) -> None:
        """The camera's state; ``paused``: the pipeline waits for an app to read it (see app.idle)."""
        vcam = self.running
        if vcam is None:
            self.status.setText("Off")
            return
        camera = vcam.sink.camera
        w, h = vcam.size
        text = f"On: {camera.backend} · {camera.device}\n{w} × {h} at {vcam.fps:g} FPS · "
        if paused:
            self.status.setText(f"{text}{vcam.sink.frames_sent} frames sent\n{PAUSED_TEXT}")
            return
        readers = vcam.readers()
        used = "" if readers is None else "\nNo app is using it" if readers == 0 else (
            f"\nIn use by {readers} app{'s' if readers > 1 else ''}")
        self.status.setText(f"{text}{vcam.sink.frames_sent} frames sent · {vcam.sink.current_fps:.1f} FPS now"
                            f"{used}")
