"""The app's own cache and config folders (the only places it writes unasked)."""
from __future__ import annotations

import os
import sys
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


class AtomicFile:
    """A temporary path beside ``target`` (same extension), renamed onto it by ``commit``.

    ``discard`` removes it, so a failed write never leaves a half-written file
    under the user's name and never touches an existing ``target``.
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = Path(target)
        self.tmp = self.target.with_name(f".{self.target.stem}.{secrets.token_hex(4)}.partial{self.target.suffix}")
        # O_EXCL: never clobber; mode 0o666 lets the umask decide, like any normal file.
        os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))

    def commit(self) -> None:
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Context manager over ``AtomicFile``: commit on success, discard on error."""
    f = AtomicFile(target)
    try:
        yield f.tmp
        f.commit()
    finally:
        f.discard()
