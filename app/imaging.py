"""Small image helpers shared by sources and backgrounds."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure


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
    """Read an image file as RGB uint8, or fail with a sentence naming the file."""
    path = Path(path)
    if not path.is_file():
        raise RuntimeFailure(f"image {path} does not exist; check the path")
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: works with any path encoding
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise RuntimeFailure(f"{path} is not a readable image; use a PNG, JPEG, BMP or WebP file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
