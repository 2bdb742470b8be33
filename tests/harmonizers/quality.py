"""Shared pieces of the shipped-weights quality tests: pushed foregrounds, fMSE, the manifest's bar."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.still import harmonize_still

#: One filter each, applied to the person only: the inharmonious composites the tests undo.
PUSHES = [("brightness", 0.5), ("brightness", -0.4), ("temperature", 0.6), ("temperature", -0.6),
          ("saturation", 0.6), ("contrast", 0.5)]


def perturbed(photo: np.ndarray, mask: np.ndarray, name: str, x: float) -> np.ndarray:
    """The photo with one filter applied to the person only: an inharmonious composite."""
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None]
    out = F.apply_filter(name, image, x) * m + image * (1 - m)
    return (out[0].permute(1, 2, 0) * 255).round().byte().numpy()


def fmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    fg = mask > 0.5
    return float(((a[fg].astype(float) - b[fg]) ** 2).mean())


def push_ratios(harmonizer, portraits) -> list[float]:
    """Foreground error after / before harmonizing, for every push of every portrait."""
    ratios = []
    for photo, mask, background in portraits:
        for name, x in PUSHES:
            composite = perturbed(photo, mask, name, x)
            after = fmse(harmonize_still(harmonizer, composite, mask, background), photo, mask)
            ratios.append(after / fmse(composite, photo, mask))
    return ratios


def shipped_entry(architecture: str, max_bytes: int = 50 * 2 ** 20) -> tuple[Path, dict]:
    """The default weights of ``architecture`` and their manifest entry, after checking the file against it
    and the entry's figures against the issues' bar (≥ 20 % below the composite's fMSE, identity ≤ 250)."""
    from models.weights import WEIGHTS_DIR, default_weights

    path = default_weights(architecture)
    (entry,) = [e for e in json.loads((WEIGHTS_DIR / "MANIFEST.json").read_text())["weights"]
                if e["default"] and e["architecture"]["class"] == architecture]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size <= max_bytes
    results = entry["evaluation"]["results"]
    assert results["model"]["fmse"] <= 0.8 * results["none"]["fmse"]
    assert results["model"]["identity_fmse"] <= 250
    return path, entry
