"""A widget that shows RGB frames scaled to fit, keeping the aspect ratio."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QWidget


def to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of ``rgb`` (uint8 H×W×3)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class VideoView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self.frames_shown = 0
        #: Shown until the first frame arrives.
        self.placeholder = ""
        #: (left, right) captions for a side-by-side frame, drawn with a divider at the centre.
        self.split_labels: tuple[str, str] | None = None
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_frame(self, rgb: np.ndarray) -> None:
        self._pixmap = QPixmap.fromImage(to_qimage(rgb))
        self.frames_shown += 1
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self._pixmap is not None:
            scaled = self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)
            target = QRect((self.width() - scaled.width()) // 2, (self.height() - scaled.height()) // 2,
                           scaled.width(), scaled.height())
            painter.drawPixmap(target.topLeft(), scaled)
            if self.split_labels:
                self._paint_split(painter, target)
        elif self.placeholder:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        painter.end()

    def _paint_split(self, painter: QPainter, target: QRect) -> None:
        mid = target.left() + target.width() // 2
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(mid, target.top(), mid, target.bottom())
        metrics = painter.fontMetrics()
        for text, left in zip(self.split_labels, (True, False)):
            box = metrics.boundingRect(text).adjusted(-8, -4, 8, 4)
            x = mid - 12 - box.width() if left else mid + 12
            box.moveTo(x, target.bottom() - box.height() - 12)
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
