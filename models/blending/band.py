"""The mixed band: the pixels of a frame that a blend may change.

A blend corrects linear blending where the camera pixel I = α·F + (1−α)·B_old is a real
mix of the person and the old room: the old room's colour leaves the foreground, the
matte's α is refined. Everywhere else the camera pixel is the person's own, and an
estimate can only lose detail: blur-fusion (:mod:`models.blending.defringe`) keeps about
α of a pixel's own detail and fills the rest from a blurred neighbourhood, which smears a
face whose matte sits a little below 1 over a whole cheek. So a blend works inside

    band = (α < MIXED_BELOW) ∧ (Chebyshev distance to the outline ≤ r),

the outline being the α = 0.5 contour, reached from either side: a pixel of the person
within r of the background, or a pixel of the background within r of the person.
Outside the band α is the matte's and the foreground is the camera frame, so linear
blending there gives exactly what the blend gives.

The distance is decided on a working copy of the matte (long side ``WORK_LONG_SIDE``) by
one morphological gradient, dilate(α ≥ ½) − erode(α ≥ ½), and enlarged by nearest
neighbour; the α test runs at full resolution, so a pixel at α ≥ ``MIXED_BELOW`` is never
in the band. On real video (the talk clip of the real-footage set, 24 frames, MediaPipe's matte)
the band takes ``defringe``'s face detail from 0.79 to 0.97 of the camera's (linear: 0.97).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch.nn.functional as F
from torch import Tensor

from models.ops.sizes import fit_long_side
from models.ops.tensor_image import resize

#: α from which a pixel is taken as the person's alone. Linear blending of the camera pixel there
#: is off from the true composite by α(1−α)·|B_old − F| ≤ 0.09 of the old room's contrast with the
#: person, while the blur-fusion estimate would keep only about α of the pixel's own detail and blur
#: the rest; and a matting model's α in [0.9, 1) inside the person is its doubt about a pixel that
#: is the person's, not a partial coverage by the old room.
MIXED_BELOW = 0.9
#: The outline: α of the person's boundary.
OUTLINE = 0.5
#: Half-width r of the band as a share of the long side (about 15 px at 1280×720, 6 at the learned
#: blend's 512-pixel copy): wider than a matte's soft edge (MediaPipe's 256-pixel output enlarged to
#: 1280 spreads a ramp of one or two of its pixels over 5–10 px) and than the outline errors the
#: learned blend is trained to correct (−3…+6 px at 512). The same half-width as the evaluation's boundary band
#: (``models.training.boundary.BAND_SHARE``), so a blend may change what it is scored on.
BAND_SHARE = 0.012
#: Long side of the working copy the distance is decided on (r = 4 working pixels).
WORK_LONG_SIDE = 320


def band_radius(size: tuple[int, int]) -> int:
    """r in pixels of a working copy of ``size`` = (width, height), at least one."""
    return max(1, round(BAND_SHARE * max(size)))


def mixed_band(alpha: np.ndarray) -> np.ndarray:
    """bool H×W: the mixed band of a float32 H×W matte."""
    h, w = alpha.shape
    size = fit_long_side(w, h, WORK_LONG_SIDE)
    person = (cv2.resize(alpha, size, interpolation=cv2.INTER_AREA) >= OUTLINE).view(np.uint8)
    side = 2 * band_radius(size) + 1
    near = cv2.morphologyEx(person, cv2.MORPH_GRADIENT, np.ones((side, side), np.uint8))
    return cv2.resize(near, (w, h), interpolation=cv2.INTER_NEAREST).view(bool) & (alpha < MIXED_BELOW)


def mixed_band_tensor(alpha: Tensor) -> Tensor:
    """:func:`mixed_band` on the device: bool 1×1×H×W of a 1×1×H×W matte."""
    h, w = alpha.shape[-2:]
    size = fit_long_side(w, h, WORK_LONG_SIDE)
    person = (resize(alpha, size) >= OUTLINE).to(alpha.dtype)
    r = band_radius(size)
    # dilate − erode, with erode(x) = −dilate(−x); max pooling ignores the border, as cv2's morphology does.
    near = F.max_pool2d(person, 2 * r + 1, 1, r) + F.max_pool2d(-person, 2 * r + 1, 1, r)
    return (F.interpolate(near, size=(h, w), mode="nearest") > 0) & (alpha < MIXED_BELOW)
