"""The preview pane: what is shown (output, before/after split, mask), mirrored or not, plus the overlay."""
from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from app.gui.overlay import PerformanceOverlay
from app.gui.video_view import VideoView
from app.pipeline import FrameResult

OUTPUT, SPLIT, MASK = "output", "split", "mask"


def compose_view(result: FrameResult, mode: str, mirror: bool) -> np.ndarray:
    """The RGB image to show: the output, original | output halves, or the alpha as grey."""
    if mode == MASK:
        grey = (np.clip(result.alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
        image = np.repeat(grey[..., None], 3, axis=2)
    else:
        image = result.output
    if mirror:
        image = image[:, ::-1]
    if mode == SPLIT:
        before = result.frame.rgb[:, ::-1] if mirror else result.frame.rgb
        half = image.shape[1] // 2
        image = np.concatenate([before[:, :half], image[:, half:]], axis=1)
    return image


class PreviewPane(QWidget):
    """A VideoView with its view mode, preview mirroring and the performance overlay."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = VideoView(self)
        self.view.placeholder = "Starting the video…"
        self.overlay = PerformanceOverlay(self.view)
        self.mode = OUTPUT
        self.mirror = True
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.view.split_labels = ("Original", "Output") if mode == SPLIT else None

    def show_result(self, result: FrameResult) -> None:
        self.view.show_frame(compose_view(result, self.mode, self.mirror))
