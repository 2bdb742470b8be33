"""The window's look: Fusion with a dark palette-like stylesheet that suits a video app."""
from __future__ import annotations

STYLE = """
QMainWindow, QWidget#central { background: #171a1f; }
QWidget { color: #e4e8ee; font-size: 10pt; }
QWidget#side { background: #1f242b; }
QTabWidget::pane { border: 1px solid #2f363f; border-radius: 6px; top: -1px; background: #1f242b; }
QTabBar::tab { background: #262c34; color: #aab3bf; padding: 7px 14px; border: 1px solid #2f363f;
               border-bottom: none; border-top-left-radius: 6px; border-top-right-radius: 6px; margin-right: 2px; }
QTabBar::tab:selected { background: #1f242b; color: #ffffff; }
QGroupBox { border: 1px solid #2f363f; border-radius: 6px; margin-top: 14px; padding: 10px 8px 8px 8px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #cfd6df; font-weight: bold; }
QPushButton, QToolButton { background: #2b323b; border: 1px solid #3a434e; border-radius: 5px; padding: 5px 10px; }
QPushButton:hover, QToolButton:hover { background: #343c47; }
QPushButton:disabled { color: #6c7480; }
QToolButton:checked { background: #2e5597; border-color: #4c8dff; }
QPushButton#primary { background: #2f6fdf; border-color: #4c8dff; font-weight: bold; font-size: 11pt; }
QPushButton#primary:hover { background: #3a7cf0; }
QPushButton#primary[active="true"] { background: #b23a3a; border-color: #d65c5c; }
QComboBox, QLineEdit { background: #262c34; border: 1px solid #3a434e; border-radius: 5px; padding: 4px 8px; }
QComboBox QAbstractItemView { background: #262c34; selection-background-color: #2e5597; }
QListWidget { background: #171a1f; border: 1px solid #2f363f; border-radius: 6px; }
QListWidget::item { border-radius: 6px; padding: 4px; }
QListWidget::item:selected { background: #2e5597; }
QSlider::groove:horizontal { height: 4px; background: #3a434e; border-radius: 2px; }
QSlider::handle:horizontal { background: #4c8dff; width: 14px; margin: -6px 0; border-radius: 7px; }
QSlider::sub-page:horizontal { background: #4c8dff; border-radius: 2px; }
QScrollBar:vertical { background: transparent; width: 10px; margin: 2px; }
QScrollBar::handle:vertical { background: #3a434e; border-radius: 4px; min-height: 24px; }
QScrollBar::add-line, QScrollBar::sub-line { height: 0; width: 0; }
QScrollBar::add-page, QScrollBar::sub-page { background: transparent; }
QLabel#hint { color: #8d96a3; }
QLabel#doctor { background: #3a2a14; border: 1px solid #c98a2b; border-radius: 6px; padding: 8px; color: #ffe2b3; }
QFrame#messageBar { background: #1d3557; border: 1px solid #4c8dff; border-radius: 6px; }
QFrame#messageBar[error="true"] { background: #4a1f1f; border-color: #d65c5c; }
QStatusBar { background: #14171b; color: #aab3bf; }
"""
