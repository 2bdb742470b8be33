"""Starting the window: the application object, its look and icon, and the README screenshot mode."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from app.errors import RuntimeFailure

#: Frames the screenshot waits for, so the matte's smoothing and the overlay have settled.
SCREENSHOT_FRAMES = 20
SCREENSHOT_TIMEOUT_S = 120.0
SCREENSHOT_COLOUR = "#3f7f8f"


def make_app():
    """The QApplication (made once), in Fusion style with the app's name and icon."""
    from PyQt6.QtWidgets import QApplication

    from app.gui.icons import app_icon

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Harmonicam")
    app.setDesktopFileName("harmonicam")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    return app


def save_screenshot(window, path: Path, frames: int = SCREENSHOT_FRAMES,
                    timeout_s: float = SCREENSHOT_TIMEOUT_S) -> None:
    """Wait until ``frames`` frames were shown, then write ``window.grab()`` to ``path`` (PNG, atomically)."""
    from PyQt6.QtWidgets import QApplication

    from models.ops.files import atomic_path

    deadline = time.monotonic() + timeout_s
    while window.preview.view.frames_shown < frames:
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"no video frames reached the window within {timeout_s:g} s, so no "
                                 "screenshot was written; run with --debug to see why")
        QApplication.processEvents()
        time.sleep(0.01)
    window.refresh_stats()  # the overlay and status bar show the latest numbers
    QApplication.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if not window.grab().save(str(tmp), "PNG"):
            raise RuntimeFailure(f"the screenshot could not be written to {path}; check the folder")


def run_gui(screenshot: str | None = None) -> int:
    """Open the window; with ``screenshot``, render it offscreen on the sample clip to that PNG and exit."""
    if screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = make_app()
    from app.gui.controller import SAMPLE
    from app.gui.gallery import SHIPPED_DIR, media_files
    from app.gui.main_window import SIZE, MainWindow
    from app.gui.settings import Settings, SettingsStore, settings_path

    if not screenshot:
        window = MainWindow(SettingsStore(settings_path()))
        window.show()
        return app.exec()
    # Defaults, not the user's settings (never saved): the sample clip before/after a shipped background.
    shipped = media_files(SHIPPED_DIR, depth=0)
    settings = Settings(source=SAMPLE, view="split", colour=SCREENSHOT_COLOUR,
                        background=str(shipped[0]) if shipped else SCREENSHOT_COLOUR)
    window = MainWindow(SettingsStore(None), settings)
    window.resize(*SIZE)
    window.show()
    try:
        save_screenshot(window, Path(screenshot))
    finally:
        window.close()
    print(f"screenshot written to {screenshot}")
    return 0
