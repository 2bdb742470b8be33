"""The background gallery drives the pipeline's background; a bad file never replaces a good one."""
from __future__ import annotations

from gui_helpers import wait_applied, wait_failed, write_image
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QColor, QDropEvent

from app.backgrounds import BlurBackground, ColourBackground, ImageBackground
from app.gui.gallery import BLUR, USER, media_files, system_wallpapers


def _select(window, qtbot, kind):
    gallery = window.gallery
    item = next(i for i in gallery.items() if i.data(Qt.ItemDataRole.UserRole) == kind)
    with wait_applied(qtbot, window, "background"):
        gallery.list.setCurrentItem(item)


def test_colour_blur_and_image(open_window, qtbot, tmp_path, monkeypatch):
    window = open_window()
    gallery, controller = window.gallery, window.controller
    monkeypatch.setattr("app.gui.gallery.QColorDialog.getColor", lambda *a: QColor("#123456"))
    with wait_applied(qtbot, window, "background"):
        gallery.choose_colour()
    assert isinstance(controller.pipeline.background, ColourBackground)
    assert controller.pipeline.background.rgb == (0x12, 0x34, 0x56)

    _select(window, qtbot, BLUR)
    with wait_applied(qtbot, window, "background"):
        gallery.blur_slider.setValue(25)
    assert isinstance(controller.pipeline.background, BlurBackground)
    assert controller.pipeline.background.strength == 2.5

    image = write_image(tmp_path / "beach.png")
    with wait_applied(qtbot, window, "background"):
        gallery.add_files([str(image)])
    assert isinstance(controller.pipeline.background, ImageBackground)
    assert window.settings.background == str(image.resolve())
    assert window.settings.user_media == [str(image.resolve())]
    assert gallery.list.currentItem().data(Qt.ItemDataRole.UserRole) == USER
    shown = window.preview.view.frames_shown
    qtbot.waitUntil(lambda: window.preview.view.frames_shown > shown + 2)


def test_unreadable_file_keeps_previous_background(open_window, qtbot, tmp_path):
    window = open_window()
    with wait_applied(qtbot, window, "background"):
        window.gallery.set_colour("#204060")
    before = window.controller.pipeline.background
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a picture")
    with wait_failed(qtbot, window, "background"):
        window.gallery.add_files([str(bad)])
    qtbot.waitUntil(lambda: "not a readable image" in window.message_bar.text())
    assert window.controller.pipeline.background is before
    assert window.settings.background == "#204060"
    assert str(bad.resolve()) not in window.settings.user_media
    assert all(i.data(Qt.ItemDataRole.UserRole + 1) != str(bad.resolve()) for i in window.gallery.items())
    assert window.gallery.spec(window.gallery.list.currentItem()) == "#204060"
    assert bad.read_bytes() == b"this is not a picture"  # the user's file is untouched


def test_drop_and_unsupported_type(open_window, qtbot, tmp_path):
    window = open_window()
    image = write_image(tmp_path / "dropped.jpg")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image))])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with wait_applied(qtbot, window, "background"):
        window.gallery.list.dropEvent(event)
    assert window.settings.background == str(image.resolve())

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    window.gallery.add_files([str(text)])
    assert "notes.txt is not an image or video" in window.message_bar.text()


def test_remove_keeps_the_file(open_window, qtbot, tmp_path):
    window = open_window()
    image = write_image(tmp_path / "mine.png")
    with wait_applied(qtbot, window, "background"):
        window.gallery.add_files([str(image)])
    window.gallery.remove_current()
    assert window.settings.user_media == [] and image.exists()


def test_folder_scans_are_shallow_and_capped(tmp_path):
    assert media_files(tmp_path / "missing") == []
    walls = tmp_path / "walls"
    deep = walls / "a" / "b"
    deep.mkdir(parents=True)
    for i in range(5):
        write_image(walls / f"w{i}.png")
    write_image(walls / "a" / "sub.png")
    write_image(deep / "too-deep.png")
    (walls / "readme.txt").write_text("x")
    assert len(system_wallpapers((walls, tmp_path / "missing"), limit=3)) == 3
    found = system_wallpapers((walls,), limit=40)
    assert walls / "a" / "sub.png" in found and deep / "too-deep.png" not in found
    assert all(p.suffix == ".png" for p in found)
