"""What every file output checks and says: a folder it can write to, and one sentence when writing fails."""
from __future__ import annotations

import os
from pathlib import Path

from app.errors import RuntimeFailure, UsageError


def check_folder(path: Path, option: str) -> None:
    """Refuse ``path`` (the value of ``option``) before any work starts when its folder is missing or
    read-only, so a long run never fails at its first frame."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: folder {folder} is not writable; choose another folder")


def write_failure(path: Path, exc: OSError) -> RuntimeFailure:
    """The sentence for an output the operating system refused to create (full disk, permissions)."""
    return RuntimeFailure(f"cannot write {path} ({exc.strerror}); check that the folder is writable and has space")


def make_folder(path: Path, option: str) -> None:
    """Create the output folder ``path`` (the value of ``option``) with its parents, or say in one sentence
    why the operating system refused (a read-only place, a file where a folder should be)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"{option} {path}: cannot create the folder ({exc.strerror}); choose a folder you can "
                             "write to") from None
