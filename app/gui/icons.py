"""The application icon, drawn at run time (no image files to ship or lose).

A rounded square with a warm-to-cool gradient (the new scene) and a person's
silhouette whose two halves carry the two tones: harmonized into the scene.
"""
from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPainterPath, QPixmap

SIZES = (16, 24, 32, 48, 64, 128, 256)


def icon_pixmap(size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    gradient = QLinearGradient(0, 0, s, s)
    gradient.setColorAt(0.0, QColor("#ff9a5a"))
    gradient.setColorAt(1.0, QColor("#3b6fd8"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(gradient)
    p.drawRoundedRect(QRectF(0, 0, s, s), s * 0.22, s * 0.22)
    person = QPainterPath()
    person.addEllipse(QPointF(s * 0.5, s * 0.38), s * 0.15, s * 0.15)
    person.addRoundedRect(QRectF(s * 0.24, s * 0.58, s * 0.52, s * 0.5), s * 0.2, s * 0.2)
    p.setClipRect(QRectF(0, 0, s, s * 0.9))
    for x, colour in ((0.0, "#fff3e6"), (s * 0.5, "#e6efff")):
        p.save()
        p.setClipRect(QRectF(x, 0, s * 0.5, s * 0.9), Qt.ClipOperation.IntersectClip)
        p.fillPath(person, QColor(colour))
        p.restore()
    p.end()
    return pixmap


def app_icon() -> QIcon:
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(icon_pixmap(size))
    return icon
