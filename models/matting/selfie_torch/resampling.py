"""MediaPipe's way into and out of the selfie model, on the host (OpenCV) and on a device (torch).

Into the model (MediaPipe's ImageToTensorCalculator, CPU converter): the whole image is
stretched to the model's size, no letterbox, by an affine warp (cv2.warpAffine, bilinear,
border replicated) that maps the image's outer corners onto the tensor's, so tensor pixel j
reads image position j·W/w, not the pixel-centre mapping of cv2.resize. The warp's result
is 8-bit (OpenCV's fixed-point arithmetic, rounded), then scaled to [0, 1]. Both were
checked byte for byte against the tensor MediaPipe 0.10.21 feeds the model: an input off
by one level on 1 % of its values moves the mask by up to 6/255.

Out of the model (TensorsToSegmentationCalculator, confidence masks): the mask is
enlarged to the image's size with cv2.resize, bilinear (pixel centres).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.ops.tensor_image import resize


def _warp_matrix(src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """The 2×3 affine matrix MediaPipe builds: the corners of a (w, h) image onto those of the tensor."""
    (w, h), (tw, th) = src, dst
    corners = np.float32([[0, h], [0, 0], [w, 0], [w, h]])
    return cv2.getPerspectiveTransform(corners, np.float32([[0, th], [0, 0], [tw, 0], [tw, th]]))[:2]


# OpenCV's fixed-point warp: coordinates in 1/32 pixel (INTER_BITS = 5), computed from the inverse matrix
# scaled by 2^10 (AB_BITS) and rounded; bilinear weights (32 − a, a) per axis; 8-bit result rounded.
_INTER_BITS, _AB_BITS = 5, 10


def _sample_points(n_out: int, scale: float, offset: float, n_in: int, along_rows: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first index, second index, weight of the second in 1/32) along one axis, as cv2.warpAffine finds them
    (it rounds the offset apart from the steps along a row, and together with them down the rows)."""
    ab = 1 << _AB_BITS
    steps = np.arange(n_out) * scale
    fixed = np.rint((steps + offset) * ab) if along_rows else np.rint(steps * ab) + np.rint(offset * ab)
    fixed += ab >> _INTER_BITS >> 1
    pos = fixed.astype(np.int64) >> (_AB_BITS - _INTER_BITS)
    first = pos >> _INTER_BITS
    # BORDER_REPLICATE: indices past either end read the end pixel.
    return np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1), pos & ((1 << _INTER_BITS) - 1)


def _axes(src: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """(y0, y1, ay, x0, x1, ax): the warp of a ``src`` image to ``size`` along each axis."""
    inverse = cv2.invertAffineTransform(_warp_matrix(src, size))
    (w, h), (tw, th) = src, size
    return (*_sample_points(th, inverse[1, 1], inverse[1, 2], h, along_rows=True),
            *_sample_points(tw, inverse[0, 0], inverse[0, 2], w, along_rows=False))


@functools.lru_cache(maxsize=16)
def _sampling(src: tuple[int, int], size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Row and column indices and weights of the warp of a ``src`` image to ``size``, on ``device``."""
    y0, y1, ay, x0, x1, ax = _axes(src, size)
    one = 1 << _INTER_BITS
    as_long = [torch.from_numpy(a).to(device) for a in (y0, y1, x0, x1)]
    weights = [torch.from_numpy(a.astype(np.float32)).to(device) for a in (one - ay, ay, one - ax, ax)]
    return (*as_long, weights[0][:, None], weights[1][:, None], weights[2], weights[3])


@functools.lru_cache(maxsize=16)
def _remap_maps(src: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's fixed-point maps of the warp: integer (x, y) and the 1/32 fractions as one table index."""
    y0, _, ay, x0, _, ax = _axes(src, size)
    points = np.stack(np.broadcast_arrays(x0[None, :], y0[:, None]), axis=-1).astype(np.int16)
    fractions = (ay[:, None] * (1 << _INTER_BITS) + ax[None, :]).astype(np.uint16)
    return points, fractions


def model_input_host(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 H×W×3 → the model's uint8 h×w×3 input (before the scaling to [0, 1]), ``size`` = (w, h).

    The same bytes as :func:`model_input`: cv2.remap with the warp's own fixed-point maps, which is the
    step cv2.warpAffine ends in, after it has found the coordinates the way MediaPipe's OpenCV does.
    """
    points, fractions = _remap_maps((rgb.shape[1], rgb.shape[0]), size)
    return cv2.remap(rgb, points, fractions, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def model_input(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """float 1×3×H×W in [0, 1] (8-bit levels) on any device → the model's 1×3×h×w input, ``size`` = (w, h).

    The warp is OpenCV's integer arithmetic carried out in float32, where every sum is an integer below
    2^24 and so exact. It gives MediaPipe's bytes where this machine's cv2.warpAffine is off by a level
    or two (another OpenCV build than the one inside mediapipe).
    """
    h, w = pixels.shape[-2:]
    y0, y1, x0, x1, wy0, wy1, wx0, wx1 = _sampling((w, h), size, pixels.device)
    levels = pixels.float().mul(255).round_()
    rows = levels.index_select(-2, y0) * wy0 + levels.index_select(-2, y1) * wy1
    total = rows.index_select(-1, x0) * wx0 + rows.index_select(-1, x1) * wx1
    return total.add_(512).div_(1024).floor_().div_(255)  # (Σ w·p + 2^14 / 32) >> 15 / 32, then 8 bits → [0, 1]


def working_copy(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The small copy :meth:`models.frame.Frame.scaled` makes on the host (cv2.INTER_AREA on 8-bit
    levels, rounded to 8 bits), made from float 1×3×H×W in [0, 1] on any device; ``size`` = (w, h)."""
    levels = pixels.float().mul(255).round_()
    small = resize(levels, size)
    if small is levels:
        return pixels
    h, w = pixels.shape[-2:]
    if (w, h) == (2 * size[0], 2 * size[1]):
        # OpenCV's halving of 8-bit images rounds halves up ((a + b + c + d + 2) >> 2); its other sizes round
        # a float to nearest, where a quarter-level tie is all but impossible.
        return small.add_(0.5).floor_().div_(255)
    return small.round_().div_(255)


def mask_to_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 h×w → float32 at ``size`` = (W, H), bilinear (a no-op at the same size)."""
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    return cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)


def mask_to_size_tensor(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """1×1×h×w → 1×1×H×W at ``size`` = (W, H), as :func:`mask_to_size` (cv2's bilinear uses pixel centres)."""
    if tuple(mask.shape[-2:]) == (size[1], size[0]):
        return mask
    return F.interpolate(mask, size=(size[1], size[0]), mode="bilinear", align_corners=False)
