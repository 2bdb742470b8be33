"""The size of a working copy (how small-copy stages pick their resolution), and fitting a picture to a frame."""
from __future__ import annotations

import cv2
import numpy as np


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most ``long_side`` (never enlarged, never 0)."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def cover_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` (width, height) and centre-crop the rest.

    Keeps the aspect ratio (no stretching); returns ``image`` itself when it
    already has that size.
    """
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = max(w / iw, h / ih)
    rw, rh = max(w, round(iw * scale)), max(h, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (rw, rh), interpolation=interp)
    x, y = (rw - w) // 2, (rh - h) // 2
    return np.ascontiguousarray(resized[y:y + h, x:x + w])
