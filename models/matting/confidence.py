"""Post-processing that does no harm: what the matting model is sure of stays as it is.

A segmentation model's output mixes two kinds of pixel. Where it is *sure* (α ≥ ``SURE_PERSON``
or α ≤ ``SURE_BACKGROUND``) it is right far more often than any rule applied after it; where it is
*unsure* (in between) a rule can help. On real video every rule that overrode confident pixels
(filling enclosed holes, cutting straight "bars", holding the previous frame's person) cut faces
or pasted background onto people somewhere. So post-processing here

* decides regions only among unsure pixels: small islands whose peak confidence stays below
  ``SURE_PERSON`` go (:func:`drop_unsure_islands`), and small enclosed holes through which the
  model never sees background are closed (:func:`close_unsure_holes`);
* lets edge refinement move α freely only on a thin rim around the outline: beyond ``RIM``
  working pixels of the model's unsure band, α is clamped back to the model's answer
  (:func:`sure_masks`, :func:`guard`, :func:`guard_tensor`).

All decisions are made on the small working copy of the matte (long side
:data:`models.matting.solidify.WORK_LONG_SIDE`) and from the current frame only. Each has a
``*_tensor`` twin that decides the same on the device (regions from :mod:`models.ops.components`),
so a GPU pipeline never waits for the matte to reach the host.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.matting.regions import enclosed_pockets, small_regions
from models.ops.components import label_regions, region_reduce, region_sums, touches_border
from models.ops.tensor_image import resize_mask

SURE_PERSON = 0.9
SURE_BACKGROUND = 0.1
BOUNDARY = 0.5
#: Halfway from the boundary to sure: an answer this far one way is clearly that way, though unsure.
CLEAR_PERSON = (BOUNDARY + SURE_PERSON) / 2
CLEAR_BACKGROUND = (BOUNDARY + SURE_BACKGROUND) / 2
#: The nearest float32 values on either side of the boundary: a kept side is strictly that side.
ABOVE_BOUNDARY = float(np.nextafter(np.float32(BOUNDARY), np.float32(1)))
BELOW_BOUNDARY = float(np.nextafter(np.float32(BOUNDARY), np.float32(0)))
#: Working pixels (≈ 4 px in 720p) beyond the model's unsure band that refinement may still change:
#: MediaPipe's outline is a 256-pixel prediction enlarged, so its true edge can lie one working
#: pixel inside its confident region.
RIM = 1
#: Regions of α > 0.5 smaller than this share of the largest are islands (a flag star, a lamp's glow);
#: a second person or a hand on its own is far bigger.
ISLAND_SHARE = 0.05
#: Enclosed holes smaller than this share of the person are pockets of doubt (a mottled cap); the
#: gap between an arm and the body is larger, and shows background anyway.
HOLE_SHARE = 0.005


def drop_unsure_islands(alpha: np.ndarray, share: float = ISLAND_SHARE) -> np.ndarray:
    """``alpha`` (working copy, float32) without its unsure islands: 8-connected regions of α > 0.5
    smaller than ``share`` of the largest whose peak α stays below ``SURE_PERSON``. A new array when
    something goes, else ``alpha`` itself."""
    small = small_regions(alpha > BOUNDARY, share)
    if small.ids.size == 0:
        return alpha
    drop = small.ids[small.reduce(alpha, np.maximum, 0.0) < SURE_PERSON]
    if drop.size == 0:
        return alpha
    # The island's faint rim goes with it (one working pixel), so no halo of it is left.
    gone = cv2.dilate(small.mask(drop).view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    return np.where(gone & (alpha < SURE_PERSON), 0.0, alpha).astype(np.float32)


def drop_unsure_islands_tensor(alpha: torch.Tensor, share: float = ISLAND_SHARE) -> torch.Tensor:
    """:func:`drop_unsure_islands` of a working copy on the device (1×1×h×w; a new tensor, decided there)."""
    a = alpha[0, 0]
    labels = label_regions(a > BOUNDARY, connectivity=8)
    areas = region_sums(labels, torch.ones_like(a))
    peaks = region_reduce(labels, a, "amax")
    small = (areas[labels] < share * areas[:-1].max()) & (peaks[labels] < SURE_PERSON)
    gone = F.max_pool2d(small[None, None].to(alpha.dtype), 3, stride=1, padding=1) > 0
    return torch.where(gone & (alpha < SURE_PERSON), 0.0, alpha)


def close_unsure_holes(alpha: np.ndarray, share: float = HOLE_SHARE) -> np.ndarray:
    """``alpha`` (working copy) with its small enclosed holes closed where the model is merely unsure:
    4-connected regions of α ≤ 0.5 that touch neither the frame's border nor any pixel of
    α ≤ ``SURE_BACKGROUND``, smaller than ``share`` of the person, are set to 1. A hole through which
    the model sees background stays open. A new array when something closes, else ``alpha``."""
    person = alpha > BOUNDARY
    if not person.any():
        return alpha
    pockets = enclosed_pockets(person, share)
    if pockets.ids.size == 0:
        return alpha
    close = pockets.ids[pockets.reduce(alpha, np.minimum, 1.0) > SURE_BACKGROUND]
    if close.size == 0:
        return alpha
    return np.where(pockets.mask(close), 1.0, alpha).astype(np.float32)


def close_unsure_holes_tensor(alpha: torch.Tensor, share: float = HOLE_SHARE) -> torch.Tensor:
    """:func:`close_unsure_holes` of a working copy on the device (1×1×h×w; a new tensor, decided there)."""
    a = alpha[0, 0]
    person = a > BOUNDARY
    labels = label_regions(~person, connectivity=4)
    areas = region_sums(labels, torch.ones_like(a))
    floors = region_reduce(labels, a, "amin")
    closed = (~touches_border(labels) & (areas < share * person.sum()) & (floors > SURE_BACKGROUND))[labels]
    return torch.where(closed, 1.0, alpha)


def keep_sides(alpha: np.ndarray, raw: np.ndarray,
               sure: tuple[float, float] = (SURE_BACKGROUND, SURE_PERSON)) -> np.ndarray:
    """``alpha`` (float32 H×W, written in place and returned) never on the other side of 0.5 from a sure
    ``raw`` answer of the model for this frame: above 0.5 where raw ≥ ``sure[1]``, below where
    raw ≤ ``sure[0]`` (by default ``SURE_PERSON`` and ``SURE_BACKGROUND``), at full resolution.

    Smoothing and refinement may soften a sure answer but never turn it over. This holds on thin
    structures too (a finger, a held stick), which have no inside for :func:`guard`'s eroded masks.
    The two clamps are per-pixel bounds made by thresholding ``raw`` (lower bound ``ABOVE_BOUNDARY`` or 0,
    upper bound ``BELOW_BOUNDARY`` or 1), so that every pass is one of OpenCV's vectorised loops."""
    raw = np.asarray(raw, np.float32)
    background, person = (np.float32(v) for v in sure)
    # OpenCV keeps src > thresh (in double): float32 raw ≥ person exactly when it is above the float32
    # just below person, and raw > background as NumPy decides it on float32.
    low = cv2.threshold(raw, float(np.nextafter(person, np.float32(0))), ABOVE_BOUNDARY, cv2.THRESH_BINARY)[1]
    cv2.max(alpha, low, dst=alpha)
    high = cv2.threshold(raw, float(background), 1.0, cv2.THRESH_BINARY)[1]
    cv2.max(high, BELOW_BOUNDARY, dst=high)
    cv2.min(alpha, high, dst=alpha)
    return alpha


def keep_sides_tensor(alpha: torch.Tensor, raw: torch.Tensor,
                      sure: tuple[float, float] = (SURE_BACKGROUND, SURE_PERSON)) -> torch.Tensor:
    """:func:`keep_sides` on the device (a new tensor)."""
    alpha = torch.where(raw >= sure[1], alpha.clamp(min=ABOVE_BOUNDARY), alpha)
    return torch.where(raw <= sure[0], alpha.clamp(max=BELOW_BOUNDARY), alpha)


def sure_masks(model: np.ndarray, rim: int = RIM) -> tuple[np.ndarray, np.ndarray]:
    """(sure person, sure background) of the model's working copy ``model``: bool masks of
    α ≥ ``SURE_PERSON`` and α ≤ ``SURE_BACKGROUND``, each eroded by ``rim`` pixels so that the rim
    along the outline stays free for edge refinement."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    person = cv2.erode((model >= SURE_PERSON).astype(np.uint8), k, borderValue=1)
    background = cv2.erode((model <= SURE_BACKGROUND).astype(np.uint8), k, borderValue=1)
    return person.astype(bool), background.astype(bool)


def sure_masks_tensor(model: torch.Tensor, rim: int = RIM) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sure_masks` on the device (1×1×h×w bool masks of a 1×1×h×w working copy)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    kernel = torch.from_numpy(k.astype(np.float32))[None, None].to(model.device, model.dtype)

    def eroded(mask: torch.Tensor) -> torch.Tensor:
        # Outside the map counts as inside the mask (OpenCV's erosion border), so zero padding of the
        # complement; a pixel stays where no pixel under the element falls outside.
        return F.conv2d((~mask).to(model.dtype), kernel, padding=rim) == 0

    return eroded(model >= SURE_PERSON), eroded(model <= SURE_BACKGROUND)


def guard(alpha: np.ndarray, model: np.ndarray, sure: tuple[np.ndarray, np.ndarray],
          box: tuple[slice, slice] | None = None) -> np.ndarray:
    """``alpha`` (float32 H×W, written in place and returned) clamped to the model's answer ``model``
    (H×W) where it is sure: α ≥ model on the sure person, α ≤ model on the sure background
    (``sure`` from :func:`sure_masks`, at any size; enlarged by nearest neighbour).

    ``box`` (rows, columns of the full frame): where ``alpha`` may differ from ``model``; outside it the
    clamps change nothing, so only the box is clamped (and only its part of the masks is enlarged)."""
    if box is None:
        box = slice(0, alpha.shape[0]), slice(0, alpha.shape[1])
    a, m = alpha[box], model[box]
    person, background = (nearest_part(mask, alpha.shape, box) for mask in sure)
    np.maximum(a, m, out=a, where=person)
    np.minimum(a, m, out=a, where=background)
    return alpha


def nearest_part(mask: np.ndarray, shape: tuple[int, int], box: tuple[slice, slice]) -> np.ndarray:
    """The part ``box`` (rows, columns) of ``mask`` enlarged to ``shape`` (H, W) by nearest neighbour:
    full-frame pixel (y, x) takes mask pixel (⌊y·h/H⌋, ⌊x·w/W⌋), OpenCV's nearest sampling."""
    (h, w), (H, W) = mask.shape, shape
    if (h, w) == (H, W):
        return mask[box]
    rows = np.minimum(np.arange(box[0].start, box[0].stop) * h // H, h - 1)
    cols = np.minimum(np.arange(box[1].start, box[1].stop) * w // W, w - 1)
    return mask[np.ix_(rows, cols)]


def changed_box(change: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """The box (rows, columns of a frame of ``shape`` = (H, W)) where ``change``, a working-size map
    enlarged bilinearly to the frame, is not zero: its non-zero pixels' box with one working pixel of
    margin, the reach of bilinear interpolation; None when nothing changed."""
    x, y, w, h = cv2.boundingRect((change != 0).view(np.uint8))
    if w == 0:
        return None
    (sh, sw), (H, W) = change.shape, shape
    return (slice(max(0, (y - 1) * H // sh), min(H, -(-(y + h + 1) * H // sh))),
            slice(max(0, (x - 1) * W // sw), min(W, -(-(x + w + 1) * W // sw))))


def guard_tensor(alpha: torch.Tensor, model: torch.Tensor, sure: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """:func:`guard` on the device (1×1×H×W tensors; a new tensor), ``sure`` from :func:`sure_masks_tensor`."""
    size = alpha.shape[-1], alpha.shape[-2]
    person, background = (resize_mask(m, size) for m in sure)
    alpha = torch.where(person, torch.maximum(alpha, model), alpha)
    return torch.where(background, torch.minimum(alpha, model), alpha)
