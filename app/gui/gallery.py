"""The background gallery: blur, a solid colour, shipped backgrounds, system wallpapers and the
user's own images and videos (added by dialog or drag-and-drop, remembered in the settings).

The gallery only proposes: it emits ``chosen(spec)`` and the controller applies
it. A background that fails is un-selected again (``reject``) and a file that
was just added for it is dropped from the list — the file itself is never touched.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

import cv2
from PyQt6.QtCore import QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QImageReader, QPainter, QPixmap, QRadialGradient
from PyQt6.QtWidgets import (
    QColorDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.backgrounds import SHIPPED_DIR
from app.gui.settings import Settings
from app.gui.video_view import to_qimage
from app.imaging import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, cover_fit, is_video_path

SYSTEM_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
SYSTEM_LIMIT = 40
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
THUMB = QSize(104, 58)
KIND, PATH = Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 1
BLUR, COLOUR, SHIPPED, SYSTEM, USER = "blur", "colour", "shipped", "system", "user"
ORIGIN = {SHIPPED: "shipped with Harmonicam", SYSTEM: "wallpaper installed on this system", USER: "your file"}
#: Blur strength slider: integer steps of 0.1.
BLUR_STEPS = (1, 40)


def media_files(folder: Path, depth: int = 1, limit: int | None = None) -> list[Path]:
    """Images and videos in ``folder`` and (``depth`` > 0) its direct subfolders, sorted; never raises."""
    found: list[Path] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        if limit is not None and len(found) >= limit:
            break
        if entry.is_file() and entry.suffix.lower() in MEDIA_EXTENSIONS:
            found.append(entry)
        elif entry.is_dir() and depth > 0:
            found += media_files(entry, depth - 1, None if limit is None else limit - len(found))
    return found


def system_wallpapers(dirs: tuple[Path, ...] = SYSTEM_DIRS, limit: int = SYSTEM_LIMIT) -> list[Path]:
    found: list[Path] = []
    for folder in dirs:
        found += media_files(folder, depth=1, limit=limit - len(found))
    return found


def thumbnail(path: Path) -> QPixmap | None:
    """A THUMB-sized cover-fit picture of an image or a video's first frame; None when unreadable."""
    if is_video_path(path):
        cap = cv2.VideoCapture(str(path))
        ok, bgr = cap.read()
        cap.release()
        if not ok:
            return None
        rgb = cover_fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (THUMB.width(), THUMB.height()))
        return QPixmap.fromImage(to_qimage(rgb))
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    if reader.size().isValid():  # decode at thumbnail size: fast for large JPEGs
        reader.setScaledSize(reader.size().scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding))
    image = reader.read()
    if image.isNull():
        return None
    x, y = (image.width() - THUMB.width()) // 2, (image.height() - THUMB.height()) // 2
    return QPixmap.fromImage(image.copy(max(x, 0), max(y, 0), THUMB.width(), THUMB.height()))


def _canvas() -> tuple[QPixmap, QPainter]:
    pixmap = QPixmap(THUMB)
    pixmap.fill(QColor("#20252c"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pixmap, painter


def blur_icon() -> QIcon:
    pixmap, p = _canvas()
    w, h = THUMB.width(), THUMB.height()
    for x, y, r, colour in ((0.25, 0.3, 0.35, "#6fa8dc"), (0.75, 0.4, 0.4, "#f6b26b"), (0.5, 0.85, 0.33, "#93c47d")):
        x, y, r = x * w, y * h, r * w
        gradient = QRadialGradient(x, y, r)
        gradient.setColorAt(0, QColor(colour))
        gradient.setColorAt(1, QColor(0, 0, 0, 0))
        p.fillRect(pixmap.rect(), gradient)
    p.end()
    return QIcon(pixmap)


def colour_icon(colour: str) -> QIcon:
    pixmap, p = _canvas()
    p.setBrush(QColor(colour))
    p.setPen(QColor(255, 255, 255, 90))
    p.drawRoundedRect(QRectF(6, 6, THUMB.width() - 12, THUMB.height() - 12), 6, 6)
    p.end()
    return QIcon(pixmap)


def placeholder_icon(text: str) -> QIcon:
    pixmap, p = _canvas()
    p.setPen(QColor("#9aa4b1"))
    p.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, text)
    p.end()
    return QIcon(pixmap)


class _DropList(QListWidget):
    """A thumbnail grid that accepts local files dropped on it."""

    files_dropped = pyqtSignal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(THUMB)
        self.setGridSize(QSize(THUMB.width() + 12, THUMB.height() + 32))
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setDragDropMode(QListWidget.DragDropMode.DropOnly)
        self.setAcceptDrops(True)

    @staticmethod
    def _local_files(event) -> list[str]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [u.toLocalFile() for u in urls if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:
        if self._local_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:
        files = self._local_files(event)
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)


class BackgroundGallery(QWidget):
    #: A background spec the user picked (path, blur:S or #rrggbb).
    chosen = pyqtSignal(str)
    #: A sentence about something the gallery refused (e.g. a file type it cannot use).
    problem = pyqtSignal(str)
    #: Settings the gallery keeps (colour, blur strength, user files) changed.
    edited = pyqtSignal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._syncing = False
        self._just_added: set[str] = set()
        #: Specs proposed and not yet settled, oldest first (the controller applies them in order).
        self._proposals: deque[str] = deque()
        self._thumbs_pending: list[QListWidgetItem] = []
        self._thumb_timer = QTimer(self, interval=0)  # thumbnails one per event-loop turn: no freeze
        self._thumb_timer.timeout.connect(self._next_thumbnail)
        self.list = _DropList(self)
        self.list.files_dropped.connect(self.add_files)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemDoubleClicked.connect(self._on_double_click)

        self._add_item(BLUR, "Blur", blur_icon(), "Blur your real background")
        self._add_item(COLOUR, "Colour", colour_icon(settings.colour), "A solid colour (double-click to change)")
        for kind, paths in ((SHIPPED, media_files(SHIPPED_DIR)), (SYSTEM, system_wallpapers()),
                            (USER, [Path(p) for p in settings.user_media])):
            for path in paths:
                self._add_file_item(kind, path)

        add = QPushButton("Add images or videos…")
        add.clicked.connect(self.choose_files)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove your file from the gallery (the file itself is kept)")
        self.remove_button.clicked.connect(self.remove_current)
        colour = QPushButton("Colour…")
        colour.clicked.connect(self.choose_colour)
        buttons = QHBoxLayout()
        buttons.addWidget(add, 1)
        buttons.addWidget(colour)
        buttons.addWidget(self.remove_button)

        self.blur_slider = QSlider(Qt.Orientation.Horizontal)
        self.blur_slider.setRange(*BLUR_STEPS)
        self.blur_slider.setValue(round(settings.blur_strength * 10))
        self.blur_slider.valueChanged.connect(self._on_blur_strength)
        self.blur_label = QLabel()
        self.blur_label.setMinimumWidth(34)
        self._blur_timer = QTimer(self, singleShot=True, interval=150)  # one swap per slider gesture
        self._blur_timer.timeout.connect(lambda: self._propose(self.list.currentItem()))
        blur_row = QHBoxLayout()
        blur_row.addWidget(QLabel("Blur strength"))
        blur_row.addWidget(self.blur_slider, 1)
        blur_row.addWidget(self.blur_label)
        self._show_blur_strength()

        hint = QLabel("Drop images or videos here to add them.")
        hint.setObjectName("hint")
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addWidget(hint)
        layout.addLayout(buttons)
        layout.addLayout(blur_row)
        self.select_spec(settings.background)

    # --- items -----------------------------------------------------------------------------------
    def _add_item(self, kind: str, label: str, icon: QIcon, tip: str, path: str | None = None) -> QListWidgetItem:
        item = QListWidgetItem(icon, label)
        item.setData(KIND, kind)
        item.setData(PATH, path)
        item.setToolTip(tip)
        item.setSizeHint(self.list.gridSize())
        self.list.addItem(item)
        return item

    def _add_file_item(self, kind: str, path: Path) -> QListWidgetItem:
        item = self._add_item(kind, path.stem, placeholder_icon("…"), f"{path}\n({ORIGIN[kind]})", str(path))
        self._thumbs_pending.append(item)
        self._thumb_timer.start()
        return item

    def _next_thumbnail(self) -> None:
        if not self._thumbs_pending:
            self._thumb_timer.stop()
            return
        item = self._thumbs_pending.pop(0)
        if self.list.row(item) < 0:  # removed meanwhile
            return
        pixmap = thumbnail(Path(item.data(PATH)))
        item.setIcon(QIcon(pixmap) if pixmap is not None else placeholder_icon("unreadable"))

    def items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def spec(self, item: QListWidgetItem | None) -> str | None:
        """The background spec an item stands for."""
        if item is None:
            return None
        kind = item.data(KIND)
        if kind == BLUR:
            return f"blur:{self.settings.blur_strength:g}"
        if kind == COLOUR:
            return self.settings.colour
        return item.data(PATH)

    def _find(self, spec: str) -> QListWidgetItem | None:
        kind = BLUR if spec.startswith("blur") else COLOUR if spec.startswith("#") else None
        for item in self.items():
            if (kind and item.data(KIND) == kind) or (kind is None and item.data(PATH) == spec):
                return item
        return None

    def select_spec(self, spec: str) -> None:
        """Show ``spec`` as selected without proposing it again."""
        self._syncing = True
        try:
            self.list.setCurrentItem(self._find(spec))
        finally:
            self._syncing = False
        self._update_buttons()

    # --- user actions ----------------------------------------------------------------------------
    def _on_current(self, item: QListWidgetItem | None, _previous=None) -> None:
        self._update_buttons()
        if item is not None and not self._syncing:
            self._propose(item)

    def _on_double_click(self, item: QListWidgetItem) -> None:
        if item.data(KIND) == COLOUR:
            self.choose_colour()

    def _update_buttons(self) -> None:
        item = self.list.currentItem()
        self.remove_button.setEnabled(item is not None and item.data(KIND) == USER)

    def select_next(self) -> None:
        """The next background in the gallery (wraps around)."""
        if self.list.count():
            self.list.setCurrentRow((self.list.currentRow() + 1) % self.list.count())

    def choose_files(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(MEDIA_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Add backgrounds", str(Path.home()),
                                                f"Images and videos ({patterns})")
        if files:
            self.add_files(files)

    def add_files(self, files: list[str]) -> None:
        """Add the user's images/videos (remembered) and switch to the last one."""
        last = None
        for name in files:
            path = Path(name).expanduser().resolve()
            if path.suffix.lower() not in MEDIA_EXTENSIONS:
                self.problem.emit(f"{path.name} is not an image or video file Harmonicam can use")
                continue
            item = self._find(str(path))
            if item is None:
                item = self._add_file_item(USER, path)
                self.settings.user_media.append(str(path))
                self._just_added.add(str(path))
            last = item
        if last is not None:
            self.edited.emit()
            if last is self.list.currentItem():
                self._propose(last)
            else:
                self.list.setCurrentItem(last)

    def remove_current(self) -> None:
        item = self.list.currentItem()
        if item is None or item.data(KIND) != USER:
            return
        self._forget(item)
        self.select_spec(self.settings.background)  # the running background stays until another is picked
        self.edited.emit()

    def _forget(self, item: QListWidgetItem) -> None:
        path = item.data(PATH)
        if path in self.settings.user_media:
            self.settings.user_media.remove(path)
        self._just_added.discard(path)
        self._syncing = True  # the neighbour that becomes current is not a choice
        try:
            self.list.takeItem(self.list.row(item))
        finally:
            self._syncing = False

    def choose_colour(self) -> None:
        colour = QColorDialog.getColor(QColor(self.settings.colour), self, "Background colour")
        if colour.isValid():
            self.set_colour(colour.name())

    def set_colour(self, colour: str) -> None:
        """Use the solid colour ``#rrggbb`` as the background."""
        self.settings.colour = colour
        item = self._find(colour)
        item.setIcon(colour_icon(colour))
        self.edited.emit()
        if item is self.list.currentItem():
            self._propose(item)
        else:
            self.list.setCurrentItem(item)

    def _on_blur_strength(self, value: int) -> None:
        self.settings.blur_strength = value / 10
        self._show_blur_strength()
        self.edited.emit()
        item = self.list.currentItem()
        if item is not None and item.data(KIND) == BLUR:
            self._blur_timer.start()

    def _show_blur_strength(self) -> None:
        self.blur_label.setText(f"{self.settings.blur_strength:.1f}")

    # --- proposals and their outcome -------------------------------------------------------------
    def _propose(self, item: QListWidgetItem) -> None:
        spec = self.spec(item)
        self._proposals.append(spec)
        self.chosen.emit(spec)

    def settle(self, ok: bool) -> None:
        """The oldest proposal ran (``ok``) or could not be used: then a file just added for it is
        dropped from the gallery. Once none is pending, the running background is shown selected."""
        spec = self._proposals.popleft() if self._proposals else None
        item = self._find(spec) if spec else None
        if item is not None and spec in self._just_added:
            self._just_added.discard(spec)
            if not ok:
                self._forget(item)
                self.edited.emit()
        if not self._proposals:
            self.select_spec(self.settings.background)
