"""The app's own cache and config folders (the only places it writes unasked)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "harmonicam"


def _platform_dir(env: str, windows_env: str, mac_sub: str, xdg_default: str) -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get(windows_env) or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / mac_sub
    else:
        base = Path(os.environ.get(env) or Path.home() / xdg_default)
    return base / APP


def cache_dir() -> Path:
    path = _platform_dir("XDG_CACHE_HOME", "LOCALAPPDATA", "Caches", ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    path = _platform_dir("XDG_CONFIG_HOME", "APPDATA", "Application Support", ".config")
    path.mkdir(parents=True, exist_ok=True)
    return path
