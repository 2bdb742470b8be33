"""Small image helpers shared by sources and backgrounds."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure
from models.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ImageFileError, read_image_rgb

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "cover_fit", "is_video_path", "read_rgb"]


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


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; a missing or broken file is a RuntimeFailure (exit 1)."""
    try:
        return read_image_rgb(path)
    except ImageFileError as exc:
        raise RuntimeFailure(str(exc)) from None




def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
