"""The performance overlay: frame rate, per-stage milliseconds, device and matting runtime."""
from __future__ import annotations

from PyQt6.QtGui import QFontDatabase
from PyQt6.QtWidgets import QLabel, QWidget

from app.idle import PAUSED_TEXT
from app.pipeline import Pipeline


def overlay_text(pipeline: Pipeline) -> str:
    """Lines for the overlay: FPS, the pipeline's device and the matting provider (or that it is paused),
    then each stage's median and p95 time."""
    times = pipeline.times
    lines = [f"{times.fps():5.1f} FPS   device {pipeline.device.upper()}",
             PAUSED_TEXT if times.paused else f"matting on {pipeline.matting.provider}"]
    for stage, ms in times.summary().items():
        lines.append(f"{stage:<11}{ms['median']:6.1f} ms  p95 {ms['p95']:6.1f}")
    return "\n".join(lines)


class PerformanceOverlay(QLabel):
    """A translucent box in the preview's top-left corner; ``refresh`` updates it."""

    MARGIN = 12

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setStyleSheet("QLabel { background: rgba(0, 0, 0, 165); color: #e8f4ff; padding: 8px 10px;"
                           " border-radius: 6px; }")
        self.move(self.MARGIN, self.MARGIN)
        self.hide()

    def refresh(self, pipeline: Pipeline | None) -> None:
        self.setText(overlay_text(pipeline) if pipeline is not None else "starting…")
        self.adjustSize()
