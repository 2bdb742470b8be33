"""Atomic file writes: nothing half-written ever appears under the user's name."""
from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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


def write_json(path: str | os.PathLike, data: object, indent: int = 1) -> None:
    """``data`` as JSON at ``path`` (its folder made when missing), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent))
