"""The source picker: cameras the OS lists, the sample clip, a video or image file; resolution, FPS
and the two mirror switches (preview mirroring is only what you see; output mirroring is what others see)."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.controller import SAMPLE
from app.gui.settings import Settings
from app.imaging import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_video_path
from app.sources import is_camera_spec

RESOLUTIONS = ((640, 360), (960, 540), (1280, 720), (1920, 1080))
FPS_CHOICES = (15.0, 24.0, 30.0, 60.0)


def select_data(combo: QComboBox, value: object) -> None:
    """Select the item whose data equals ``value`` (Qt's findData cannot compare Python tuples)."""
    for i in range(combo.count()):
        if combo.itemData(i) == value:
            combo.setCurrentIndex(i)
            return


def source_label(spec: str, cameras: list[tuple[str, str]]) -> str:
    if spec == SAMPLE:
        return "Built-in sample clip"
    if is_camera_spec(spec):
        names = dict(cameras)
        return f"Camera {spec}: {names[spec]}" if spec in names else f"Camera {spec}"
    return f"{'Video' if is_video_path(spec) else 'Image'}: {Path(spec).name}"


class SourcePanel(QWidget):
    #: (spec, (width, height), fps): the user asked for this source.
    source_requested = pyqtSignal(str, tuple, float)
    mirror_preview_changed = pyqtSignal(bool)
    mirror_output_changed = pyqtSignal(bool)
    rescan_requested = pyqtSignal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._cameras: list[tuple[str, str]] = []
        self.source_combo = QComboBox()
        self.source_combo.activated.connect(lambda _: self._request())
        rescan = QPushButton("Rescan")
        rescan.setToolTip("Look for cameras again")
        rescan.clicked.connect(self.rescan_requested)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_combo, 1)
        source_row.addWidget(rescan)
        open_video = QPushButton("Open video…")
        open_video.clicked.connect(lambda: self.open_file(video=True))
        open_image = QPushButton("Open image…")
        open_image.clicked.connect(lambda: self.open_file(video=False))
        file_row = QHBoxLayout()
        file_row.addWidget(open_video)
        file_row.addWidget(open_image)

        self.resolution_combo = QComboBox()
        sizes = list(RESOLUTIONS)
        if tuple(settings.resolution) not in sizes:
            sizes.append(tuple(settings.resolution))
        for w, h in sorted(sizes):
            self.resolution_combo.addItem(f"{w} × {h}", (w, h))
        self.resolution_combo.activated.connect(lambda _: self._request())
        self.fps_combo = QComboBox()
        for fps in sorted(set(FPS_CHOICES) | {settings.fps}):
            self.fps_combo.addItem(f"{fps:g} FPS", fps)
        self.fps_combo.setToolTip("The most frames a second taken from a camera or still image (fewer save power); "
                                  "a video file plays at its own rate")
        self.fps_combo.activated.connect(lambda _: self._request())

        self.mirror_preview = QCheckBox("Mirror the preview (like a mirror)")
        self.mirror_preview.setChecked(settings.mirror_preview)
        self.mirror_preview.toggled.connect(self.mirror_preview_changed)
        self.mirror_output = QCheckBox("Mirror the output (what others see)")
        self.mirror_output.setToolTip("Off is right for calls: apps mirror only your own self-view")
        self.mirror_output.setChecked(settings.mirror_output)
        self.mirror_output.toggled.connect(self.mirror_output_changed)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")

        form = QFormLayout()
        form.addRow("Source", source_row)
        form.addRow("", file_row)
        form.addRow("Resolution", self.resolution_combo)
        form.addRow("Frame rate", self.fps_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.mirror_preview)
        layout.addWidget(self.mirror_output)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.show_running(SAMPLE, "")

    def set_cameras(self, cameras: list[tuple[str, str]]) -> None:
        self._cameras = cameras

    def show_running(self, spec: str, description: str) -> None:
        """List the cameras, the sample clip and the running file; select what runs and its format."""
        combo = self.source_combo
        combo.clear()
        specs = [idx for idx, _ in self._cameras] + [SAMPLE]
        if spec not in specs:
            specs.append(spec)
        for s in specs:
            combo.addItem(source_label(s, self._cameras), s)
        combo.setCurrentIndex(specs.index(spec))
        select_data(self.resolution_combo, tuple(self.settings.resolution))
        select_data(self.fps_combo, self.settings.fps)
        camera_note = "" if self._cameras else " No camera found."
        self.status.setText(f"Now showing: {description}.{camera_note}" if description else "Starting…")

    def open_file(self, video: bool) -> None:
        exts = VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS
        kind = "Videos" if video else "Images"
        name, _ = QFileDialog.getOpenFileName(self, f"Open {kind.lower()[:-1]}", str(Path.home()),
                                              f"{kind} ({' '.join('*' + e for e in sorted(exts))})")
        if name:
            self.request(name)

    def request(self, spec: str) -> None:
        """Ask for ``spec`` at the chosen resolution and frame rate."""
        combo = self.source_combo
        if combo.findData(spec) < 0:
            combo.addItem(source_label(spec, self._cameras), spec)
        combo.setCurrentIndex(combo.findData(spec))
        self._request()

    def _request(self) -> None:
        self.source_requested.emit(self.source_combo.currentData(), self.resolution_combo.currentData(),
                                   self.fps_combo.currentData())
