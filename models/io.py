"""Reading image files: one definition of what counts as an image and how it is decoded."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class ImageFileError(OSError):
    """An image file that is missing or cannot be decoded; the message says what to do."""


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 H×W×3, or fail with a sentence naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"image {path} does not exist; check the path")
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: works with any path encoding
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageFileError(f"{path} is not a readable image; use a PNG, JPEG, BMP or WebP file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
