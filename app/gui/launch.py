"""Starting the window: the application object, its look and icon, and the README screenshot mode.

Before Qt starts, :func:`prepare_qt` makes sure it can: OpenCV's wheel points
QT_QPA_PLATFORM_PLUGIN_PATH at its own (Qt 5) plugins, and Qt 6's X11 plugin
needs system libraries a fresh desktop may lack; without this check Qt aborts
the process with a message about OpenCV's folder. While the window is open,
Ctrl+C, SIGTERM and SIGHUP close it as its close button does.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from app.errors import RuntimeFailure
from app.signals import TERMINATING, Terminated, exit_code, handle_signals, signal_name

log = logging.getLogger(__name__)

#: Frames the screenshot waits for, so the matte's smoothing and the overlay have settled.
SCREENSHOT_FRAMES = 20
SCREENSHOT_TIMEOUT_S = 120.0
SCREENSHOT_COLOUR = "#3f7f8f"


#: Libraries Qt 6 itself loads on Linux (any platform plugin): soname → Debian/Ubuntu package.
QT_LIBRARIES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libdbus-1.so.3": "libdbus-1-3",
}
#: Libraries of Qt 6's X11 platform plugin (libqxcb.so and libQt6XcbQpa; Qt 6.5+ added xcb-cursor).
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def can_load(soname: str) -> bool:
    """Whether the dynamic loader finds ``soname`` (and what it needs), as Qt's plugin will look for it."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def qt_platform() -> str:
    """The platform plugin Qt will try first: QT_QPA_PLATFORM, else wayland in a Wayland session, else xcb."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip()
    if os.environ.get("XDG_SESSION_TYPE") == "wayland" and os.environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def missing_qt_libraries(platform: str | None = None) -> dict[str, str]:
    """{soname: Debian/Ubuntu package} of the libraries Qt needs on Linux and cannot load here."""
    if not sys.platform.startswith("linux"):
        return {}
    needed = dict(QT_LIBRARIES)
    if (platform or qt_platform()) == "xcb":
        needed.update(XCB_LIBRARIES)
    return {soname: package for soname, package in needed.items() if not can_load(soname)}


def _inside(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def drop_opencv_qt_paths() -> None:
    """Unset the Qt variables OpenCV's wheel points into its own folder (its Qt 5 plugins break PyQt6)."""
    spec = importlib.util.find_spec("cv2")
    if spec is None or not spec.submodule_search_locations:
        return
    cv2_dir = Path(list(spec.submodule_search_locations)[0])
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH"):
        value = os.environ.get(name)
        if value and any(_inside(part, cv2_dir) for part in value.split(os.pathsep) if part):
            log.debug("unsetting %s=%s (OpenCV's Qt files)", name, value)
            del os.environ[name]


def prepare_qt() -> None:
    """Call before the first QApplication: Qt's own plugins, and a sentence instead of Qt's abort."""
    drop_opencv_qt_paths()
    missing = missing_qt_libraries()
    if missing:
        *most, last = missing
        names = f"{', '.join(most)} and {last}" if most else last
        packages = " ".join(dict.fromkeys(missing.values()))
        raise RuntimeFailure(f"the window cannot start because Qt needs {names}, which "
                             f"{'is' if len(missing) == 1 else 'are'} not installed; install "
                             f"{'it' if len(missing) == 1 else 'them'} with 'sudo apt install {packages}' "
                             "(Debian/Ubuntu), or use 'harmonicam run --output FILE' without a window")


def make_app():
    """The QApplication (made once), in Fusion style with the app's name and icon."""
    widgets = sys.modules.get("PyQt6.QtWidgets")
    if widgets is None or widgets.QApplication.instance() is None:
        prepare_qt()  # before anything loads Qt's libraries
    from PyQt6.QtWidgets import QApplication

    from app.gui.icons import app_icon

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Harmonicam")
    app.setDesktopFileName("harmonicam")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    return app


@contextlib.contextmanager
def close_on_signals(app, close: Callable[[], None], signums: tuple[int, ...] = (signal.SIGINT, *TERMINATING),
                     wake_ms: int = 200) -> Iterator[list[int]]:
    """While the event loop runs, Ctrl+C, SIGTERM and SIGHUP call ``close()`` and quit ``app``.

    Python runs signal handlers only between its own bytecodes, never while Qt's C++
    loop waits, so a timer wakes the interpreter every ``wake_ms``. The handler only
    schedules the close on the loop (no widget is touched in the middle of other
    code) and raises nothing: an exception inside a Qt callback would abort the
    process. Yields the list the received signal numbers are appended to; a caller
    that finds it non-empty before starting the loop should close and not start it.
    """
    from PyQt6.QtCore import QTimer

    received: list[int] = []

    def close_and_quit() -> None:
        close()
        app.quit()

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            QTimer.singleShot(0, close_and_quit)

    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(wake_ms)
    try:
        with handle_signals(on_signal, signums):
            yield received
    finally:
        wake.stop()
        _forget_pending_quits()


def _forget_pending_quits() -> None:
    """Drop the quit events still queued after the application's loop ended.

    Closing the last window while the loop runs queues a quit. When the loop ends first (``app.quit()``
    right after ``close()``), that quit stays queued, and handled later, outside any loop, it makes every
    event loop the process starts afterwards return at once: timers never fire, and a window never shows
    a frame."""
    from PyQt6.QtCore import QCoreApplication, QEvent

    QCoreApplication.removePostedEvents(None, QEvent.Type.Quit)


@contextlib.contextmanager
def close_windows_on_signals(signums: tuple[int, ...] = (signal.SIGINT, *TERMINATING)) -> Iterator[list[int]]:
    """For a window that another module starts (``run --preview``): Ctrl+C, SIGTERM and SIGHUP close it.

    Before a QApplication exists the signal unwinds the stack as usual (``KeyboardInterrupt`` or
    :class:`~app.signals.Terminated`); once Qt runs, raising would abort the process from inside a Qt
    callback, so every window is closed instead, as the close button does (the preview's own loop ends with
    its window, :func:`~app.gui.preview_window.run_preview_window`), and the signal is appended to the
    yielded list for the caller's exit code.
    """
    received: list[int] = []
    raised: list[int] = []

    def on_signal(signum: int) -> None:
        widgets = sys.modules.get("PyQt6.QtWidgets")
        app = widgets.QApplication.instance() if widgets is not None else None
        if app is None:
            if not raised:
                raised.append(signum)
                raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
            return
        received.append(signum)
        if len(received) == 1:
            from PyQt6.QtCore import QTimer

            QTimer.singleShot(0, app.closeAllWindows)

    with handle_signals(on_signal, signums):
        yield received


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
        window = None

        def close() -> None:  # its closeEvent stops the camera, the pipeline and the virtual camera
            if window is not None and window.isVisible():
                window.close()

        with close_on_signals(app, close) as received:  # before the window: a signal while it starts counts
            window = MainWindow(SettingsStore(settings_path()))
            window.show()
            log.debug("window open; Ctrl+C, SIGTERM or SIGHUP close it")
            code = app.exec() if not received else 0
            close()  # when the loop never ran; else a no-op
        if received:
            log.info("window closed by %s", signal_name(received[0]))
            return exit_code(received[0])
        return code
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
