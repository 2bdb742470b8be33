"""The checkpoints we trained ourselves, listed in ``weights/MANIFEST.json``."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

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
