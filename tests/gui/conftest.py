"""Fixtures for driving the real window offscreen.

Qt aborts the whole process without a display, so the offscreen platform is
chosen before anything imports Qt. Every test gets its own config folder; the
cache (the rendered sample clip) is the session's temporary one.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: Small frames keep the suite quick on two cores.
TEST_SIZE = (320, 180)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    """A config folder per test, so a restart of the window sees only what that test saved.
    (tests/conftest.py already moves the cache and config of the whole session into a temp folder.)"""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    # The camera list is the test's choice, whatever is plugged into the machine running it.
    monkeypatch.setattr("app.gui.controller.cameras", lambda: [])
    return config


@pytest.fixture
def settings_file(isolated_home) -> Path:
    """The settings file, pre-seeded with a small resolution."""
    path = isolated_home / "harmonicam" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"resolution": list(TEST_SIZE)}))
    return path


@pytest.fixture
def open_window(qtbot, settings_file):
    """``open_window()`` → a shown MainWindow that has displayed a few frames."""
    from app.gui.main_window import MainWindow
    from app.gui.settings import SettingsStore

    def make(wait_frames: int = 3):
        window = MainWindow(SettingsStore(settings_file))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.preview.view.frames_shown >= wait_frames, timeout=30000)
        return window

    return make
