"""The banner above the preview: problems (and their fixes) stay visible until dismissed."""
from __future__ import annotations

from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


def sentence(text: str) -> str:
    """The app's messages start lower-case and end without a stop (CLI style); the window shows sentences."""
    text = text.strip()
    if not text:
        return text
    first_word = text.split(maxsplit=1)[0]
    if not any(c in first_word for c in "./\\"):  # a file name keeps its spelling
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


class MessageBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.label = QLabel()
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 6, 8)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, error: bool = True) -> None:
        self.label.setText(sentence(text))
        self.setProperty("error", error)
        self.style().unpolish(self)  # re-read the stylesheet for the new property
        self.style().polish(self)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
