"""Small image helpers shared by sources and backgrounds."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from app.errors import RuntimeFailure
from models.io import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS, VIDEO_EXTENSIONS, ImageFileError, read_image_rgb
from models.ops.sizes import cover_fit

__all__ = ["IMAGE_EXTENSIONS", "MAX_FRAME_SIZE", "MAX_IMAGE_PIXELS", "MIN_FRAME_SIDE", "VIDEO_EXTENSIONS",
           "check_frame_size", "cover_fit", "is_video_path", "read_rgb"]

#: The frame sizes the pipeline takes, as ``--resolution`` allows them: 16x16 up to 7680x4320.
MIN_FRAME_SIDE = 16
MAX_FRAME_SIZE = (7680, 4320)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; a missing or broken file is a RuntimeFailure (exit 1)."""
    try:
        return read_image_rgb(path)
    except ImageFileError as exc:
        raise RuntimeFailure(str(exc)) from None


def check_frame_size(size: tuple[int, int], what: str) -> tuple[int, int]:
    """``size`` (width, height) when it is a frame size the pipeline takes, else a RuntimeFailure.

    Both sides at least :data:`MIN_FRAME_SIDE`, at most :data:`MAX_FRAME_SIZE`, the
    range ``--resolution`` accepts. Sources whose own resolution would become the
    frame size use it; with a ``--resolution`` their pictures are scaled instead,
    whatever their size.
    """
    w, h = size
    if w < MIN_FRAME_SIDE or h < MIN_FRAME_SIDE:
        raise RuntimeFailure(f"{what} is {w}x{h} pixels, smaller than the minimum frame of "
                             f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}; pass --resolution (e.g. 640x480) to scale it "
                             "or use a bigger file")
    if w > MAX_FRAME_SIZE[0] or h > MAX_FRAME_SIZE[1]:
        raise RuntimeFailure(f"{what} is {w}x{h} pixels, larger than the maximum frame of "
                             f"{MAX_FRAME_SIZE[0]}x{MAX_FRAME_SIZE[1]}; pass --resolution (e.g. 1920x1080) "
                             "to scale it")
    return size


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
