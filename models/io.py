"""Reading image files: one definition of what counts as an image and how it is decoded."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

#: OpenCV refuses to decode images with more pixels than this (its CV_IO_MAX_IMAGE_PIXELS default, 2^30).
MAX_IMAGE_PIXELS = 1 << 30

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of a complete PNG
_FORMATS = "use a PNG, JPEG, BMP or WebP file"


class ImageFileError(OSError):
    """An image file that is missing or cannot be decoded; the message says what to do."""


def _png_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``data`` is not a PNG."""
    head = data[:24].tobytes()
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _keeps_alpha(data: np.ndarray) -> bool:
    """Formats whose transparency we honour: PNG and WebP (by content, not by name)."""
    head = data[:16].tobytes()
    return head.startswith(_PNG_SIGNATURE) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _to_uint8(image: np.ndarray, path: Path) -> np.ndarray:
    """Scale any decoded depth to uint8: 16-bit by 255/65535 (rounded), float from [0, 1]."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255 / 65535)  # rounds to nearest; never negative
    if image.dtype in (np.float32, np.float64):
        return np.rint(np.clip(np.nan_to_num(image), 0.0, 1.0) * 255).astype(np.uint8)
    raise ImageFileError(f"{path} has {image.dtype} pixels, which are not supported; "
                         "save it as an 8- or 16-bit PNG or as a JPEG")


def _to_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    """Decoded BGR(A)/grey of any depth → RGB uint8; transparency is composited over black."""
    image = _to_uint8(image, path)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 2:  # grey + alpha (OpenCV usually expands these to BGRA already)
        grey, alpha = cv2.split(image)
        return cv2.multiply(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), cv2.merge([alpha] * 3), scale=1 / 255)
    if channels == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        # Over black: colour·α/255, rounded (a fully transparent pixel is black, whatever colour it stores).
        return cv2.multiply(rgb, cv2.merge([image[..., 3]] * 3), scale=1 / 255)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise ImageFileError(f"{path} has {channels} colour channels, which are not supported; "
                         "save it as an RGB PNG or JPEG")


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 H×W×3, or fail with a sentence naming the file.

    * Grey images become grey RGB; 16-bit images are scaled to 8 bits (v·255/65535,
      rounded, not truncated); float TIFFs are taken as 0..1.
    * Transparency (PNG and WebP, including palette transparency) is composited over
      black: each colour becomes colour·α/255, so a fully transparent pixel is black
      whatever colour it stores. Other formats' alpha channels are dropped.
    * CMYK JPEGs are converted to RGB by the decoder; JPEG EXIF orientation is applied.
    * Images of any size up to :data:`MAX_IMAGE_PIXELS` (OpenCV's limit, 2^30 pixels)
      are read; larger ones are refused.
    * Missing files, folders, empty, truncated or undecodable files raise
      :class:`ImageFileError` with one sentence that says what to do.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"{path} is a folder, not an image file; pass the path of an image file")
    if not path.is_file():
        raise ImageFileError(f"image {path} does not exist; check the path")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: works with any path encoding
    except OSError as exc:
        raise ImageFileError(f"{path} cannot be read ({exc.strerror or exc}); check its permissions") from None
    if data.size == 0:
        raise ImageFileError(f"{path} is an empty file (0 bytes), not a readable image; {_FORMATS}")
    size = _png_size(data)
    if size is not None:
        if size[0] * size[1] > MAX_IMAGE_PIXELS:
            raise ImageFileError(f"{path} is {size[0]}x{size[1]} pixels, more than the limit of "
                                 f"{MAX_IMAGE_PIXELS} pixels; scale it down first")
        # libpng prints its own error for a cut-off file; refuse it before decoding instead.
        if data[-len(_PNG_END):].tobytes() != _PNG_END and _PNG_END not in data[-65536:].tobytes():
            raise ImageFileError(f"{path} is a truncated PNG (its end is missing), not a readable image; "
                                 "copy or export it again")
    flags = cv2.IMREAD_UNCHANGED if _keeps_alpha(data) else cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    try:
        image = cv2.imdecode(data, flags)
    except (cv2.error, MemoryError) as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):
            raise ImageFileError(f"{path} has more than {MAX_IMAGE_PIXELS} pixels, the most OpenCV decodes; "
                                 "scale it down first") from None
        if isinstance(exc, MemoryError) or "memory" in str(exc).lower():
            raise ImageFileError(f"{path} is too large to decode in the memory available; "
                                 "scale it down first") from None
        image = None
    if image is None or image.size == 0:
        raise ImageFileError(f"{path} is not a readable image (damaged, truncated or not an image); {_FORMATS}")
    return _to_rgb(image, path)
