"""The checkpoints we trained ourselves, listed in ``weights/MANIFEST.json``."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


@lru_cache(maxsize=1)
def manifest() -> tuple[dict, ...]:
    """Every manifest entry (empty when the manifest is missing)."""
    path = WEIGHTS_DIR / "MANIFEST.json"
    if not path.is_file():
        return ()
    return tuple(json.loads(path.read_text())["weights"])


def default_weights(architecture: str) -> Path | None:
    """The shipped default checkpoint for an architecture class (``module.Class``), if present."""
    for entry in manifest():
        if entry.get("default") and entry["architecture"]["class"] == architecture:
            path = WEIGHTS_DIR / entry["file"]
            return path if path.is_file() else None
    return None


def shipped_check(architecture: str, reason: str) -> Callable[[], str | None]:
    """A registry ``check`` for a stage that needs weights: None while shipped weights for ``architecture``
    are present, else ``reason`` (one sentence saying what to pass instead)."""
    def check() -> str | None:
        return reason if default_weights(architecture) is None else None

    return check


def weights_path(weights: str | os.PathLike | None, architecture: str, missing: str) -> Path:
    """``weights`` when given, else the shipped default for ``architecture``; without either, a
    FileNotFoundError whose message is ``missing`` (one sentence saying what to pass)."""
    path = weights or default_weights(architecture)
    if path is None:
        raise FileNotFoundError(missing)
    return Path(path)
