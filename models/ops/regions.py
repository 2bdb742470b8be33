"""Work on the part of a frame that can change: the box around a matte, a region of an enlargement.

Outside the box of α > 0 a composite is the background as it is, so full-resolution
per-pixel work can stop at that box (a person usually fills well under half of a
conference frame).
"""
from __future__ import annotations

import cv2
import numpy as np

#: A region of an H×W image as (rows, columns).
Box = tuple[slice, slice]


#: Pixels per strip of :func:`strip_boxes` by default: the blend without Numba makes one OpenCV call per strip.
STRIP_PIXELS = 1 << 17


def _nonzero(mask: np.ndarray) -> np.ndarray:
    """``mask`` (float or uint8 H×W) as the uint8 that OpenCV's bounding rectangles read: non-zero where it is."""
    return mask if mask.dtype == np.uint8 else (mask > 0).view(np.uint8)


def box_of(mask: np.ndarray) -> Box | None:
    """The bounding box of the non-zero pixels of ``mask`` (float or uint8 H×W), None when there are none."""
    x, y, w, h = cv2.boundingRect(_nonzero(mask))
    return (slice(y, y + h), slice(x, x + w)) if w else None


def strip_boxes(mask: np.ndarray, strip_pixels: int = STRIP_PIXELS) -> list[Box]:
    """The box of the non-zero pixels of ``mask`` (float or uint8 H×W) cut into horizontal strips of about
    ``strip_pixels`` pixels, each trimmed to the box of its own non-zero pixels; strips without any are left out.

    A silhouette is narrower at the head than at the shoulders, so the strips cover far less than the one box
    around it (a head and shoulders in a 720p call: about half of it)."""
    inside = _nonzero(mask)
    _, y, w, h = cv2.boundingRect(inside)
    if w == 0:
        return []
    rows = max(1, strip_pixels // w)
    boxes = []
    for r0 in range(y, y + h, rows):
        bx, by, bw, bh = cv2.boundingRect(inside[r0:min(r0 + rows, y + h)])
        if bw:
            boxes.append((slice(r0 + by, r0 + by + bh), slice(bx, bx + bw)))
    return boxes


def enlarge_region(small: np.ndarray, size: tuple[int, int], box: Box) -> np.ndarray:
    """``box`` of ``cv2.resize(small, size, INTER_LINEAR)`` without enlarging the rest of it.

    Each pixel (X, Y) of the enlargement samples ``small`` at ((X + ½)·w/W − ½, (Y + ½)·h/H − ½),
    as ``cv2.resize`` does; an inverse-mapped affine warp evaluates exactly those samples for the
    box alone, edges replicated. OpenCV's warp interpolates with 5-bit weights where resize uses
    11-bit ones, so uint8 results differ from the cropped resize by at most one level.
    """
    width, height = size
    rows, cols = box
    fx, fy = small.shape[1] / width, small.shape[0] / height
    to_small = np.array([[fx, 0, (cols.start + 0.5) * fx - 0.5], [0, fy, (rows.start + 0.5) * fy - 0.5]])
    return cv2.warpAffine(small, to_small, (cols.stop - cols.start, rows.stop - rows.start),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
