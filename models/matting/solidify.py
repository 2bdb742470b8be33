"""A matte that holds together: decisions on a small working copy of the person's alpha.

Segmentation models leave three kinds of defect that edge refinement cannot repair,
because they are errors of *decision*, not of edge placement:

* see-through interior — low-confidence patches inside the person (MediaPipe's general
  model gives the white top of a cap α ≈ 0.5–0.9, mottled);
* background structures glued to the person — thin, weakly confident protrusions (a gold
  flag pole beside the head at α ≈ 0.3–0.6, ~2.5 px wide on a 320-px copy);
* stray islands — separate blobs (flag stars).

:func:`solidify` decides, on the working copy (long side ``WORK_LONG_SIDE``), a near-binary
matte for guided feathering (He, Sun & Tang 2013, "Guided Image Filtering", §4 "guided
feathering": a binary mask refined into an alpha matte with the colour image as the guide).
The soft edges come back from that filter, from the image's own colours; the decision band
below keeps the boundary's position continuous in α so that it does not flicker.
"""
from __future__ import annotations

import cv2
import numpy as np

from models.matting import regions
from models.ops.sizes import fit_long_side

WORK_LONG_SIDE = 320
#: α of the person's boundary. The decision band around it is narrow enough to send the flag
#: pole (α ≤ 0.45 beside the cap) to ≈ 0 and the cap (α ≥ 0.55 almost everywhere) to ≈ 1, and
#: wide enough that the boundary moves smoothly as α drifts (a hard threshold would flicker).
BOUNDARY = 0.5
BAND = (0.4, 0.6)
#: α of confident pixels: structures this sure are kept however thin they are (fingers).
CONFIDENT = 0.9
#: Working pixels (4 px in 720p) from a confident pixel within which the body is taken as it is:
#: MediaPipe's own edge ramp from α 0.9 down to 0.5 is 1–2 working pixels wide; the flag pole
#: beside the cap lies 2–4 working pixels out from the confident head.
REACH = 1
#: Opening diameter as a share of the working long side (5 px at 320, ~20 px in 720p): removes
#: unconfident structures thinner than that, such as a 10-px flag pole; heads and arms are far wider.
THIN_SHARE = 0.016
#: Holes enclosed by the person smaller than this share of its area are filled: the pockets of a
#: mottled cap are < 0.1 %, while the gap between an arm and the body (hand on hip) is ≳ 1 %.
HOLE_SHARE = 0.005
#: Separate regions smaller than this share of the largest are dropped (the person is the largest;
#: a hand or a second head is far bigger, a flag star far smaller).
ISLAND_SHARE = 0.05
#: The colour test of weak edge pixels (:func:`unlike_the_person`): working pixels searched around
#: each (LOOK), the α from which a neighbour counts as surely the person's (SURE: a cap's white top
#: is 0.7–0.9 where 0.9 is rare), and the RGB distance in levels beyond which two colours differ
#: (UNLIKE: a cap band's black and the sure black cap ≲ 30 apart, the gold pole and the band ≳ 75).
LOOK = 6
SURE = 0.7
UNLIKE = 48.0
#: α of the solid matte below which a working pixel is not the person's (for :func:`reach_of`).
REACH_FLOOR = 0.02
#: Hysteresis in time: a pixel of the previous frame's decided person keeps at least HELD (just inside
#: the decision band) while the model still gives it more than HOLD. MediaPipe's confidence for the
#: sample clip's cap drops from > 0.5 to 0.2–0.5 for 0.7 s (frames 87–107) and half the cap would go;
#: a person who moves away takes their α below HOLD at once and is let go.
HOLD = 0.15
HELD = 0.55


def small_regions(mask: np.ndarray, share: float) -> np.ndarray | None:
    """The 8-connected regions of ``mask`` (bool) smaller than ``share`` of its largest one, as a bool
    mask; None when there are none."""
    small = regions.small_regions(mask, share)
    return small.mask() if small.ids.size else None


def island_keep(alpha: np.ndarray, share: float = ISLAND_SHARE) -> np.ndarray | None:
    """1 where α stays, 0 on regions of α > 0.5 smaller than ``share`` of the largest (and their rims);
    None when there is nothing to drop. Same size as ``alpha`` (a working copy)."""
    drop = small_regions(alpha > BOUNDARY, share)
    if drop is None:
        return None
    gone = cv2.dilate(drop.astype(np.uint8), np.ones((3, 3), np.uint8))
    return 1 - gone.astype(np.float32)


def drop_islands(alpha: np.ndarray) -> np.ndarray:
    """``alpha`` (float32 H×W) without the small stray regions (decided on a working copy)."""
    h, w = alpha.shape
    keep = island_keep(cv2.resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE), interpolation=cv2.INTER_AREA))
    return alpha if keep is None else alpha * cv2.resize(keep, (w, h), interpolation=cv2.INTER_LINEAR)


def _fill_small_holes(body: np.ndarray, share: float) -> np.ndarray:
    """``body`` (bool) with its enclosed background pockets smaller than ``share`` of its area filled."""
    pockets = regions.enclosed_pockets(body, share)
    return body | pockets.mask() if pockets.ids.size else body


def _touching_outside(parts: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The 8-connected regions of ``parts`` (uint8 or bool, within ``body``) that touch the outside of ``body``."""
    _, labels = cv2.connectedComponents(parts.astype(np.uint8), connectivity=8)
    outside = cv2.dilate((~body).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return np.isin(labels, np.unique(labels[outside & (labels > 0)]))


def unlike_the_person(alpha: np.ndarray, rgb: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The ``weak`` pixels whose colour is unlike that of every sure person pixel within ``LOOK`` and
    nearer to that of a pixel outside the person (a nearest-colour vote between the two sides).

    A background object glued to the person's edge is only half believed by the model and has
    its own colour; the person's weak edge (a cap band, hair, the far side of a shoulder) continues
    colours the model is sure of right beside it. All weak pixels are tested at once:
    (2·LOOK+1)² offsets × the weak pixels.
    """
    ys, xs = np.nonzero(weak)
    unlike = np.zeros(weak.shape, bool)
    if ys.size == 0:
        return unlike
    h, w = alpha.shape
    steps = np.arange(-LOOK, LOOK + 1, 2)  # every other pixel: 49 neighbours instead of 169, colours vary slowly
    dy, dx = (d.reshape(-1, 1) for d in np.meshgrid(steps, steps, indexing="ij"))
    yy, xx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
    colours = rgb.astype(np.float32)
    distance = ((colours[yy, xx] - colours[ys, xs]) ** 2).sum(-1)
    around = alpha[yy, xx]
    person = np.where(around >= SURE, distance, np.inf).min(0)
    rest = np.where(around < BOUNDARY, distance, np.inf).min(0)
    # A weak pixel with no confident one within reach is not judged: there is nothing to compare with.
    unlike[ys, xs] = (person > UNLIKE ** 2) & np.isfinite(person) & (rest < person)
    return unlike


def solidify(alpha: np.ndarray, rgb: np.ndarray | None = None, bars: np.ndarray | None = None,
             held: np.ndarray | None = None) -> np.ndarray:
    """The working copy ``alpha`` (float32 h×w in [0,1]) made to hold together: float32 h×w, ≈ 0 or 1
    except across the person's boundary. ``rgb``: the frame at the same size (uint8), for the colour
    test of weak edge pixels (:func:`unlike_the_person`); ``bars``: background bars that run into the
    person (bool h×w, :func:`models.matting.background_bars.background_bars`), which are never the
    person's however sure the model is; ``held``: the previous frame's decided person (bool h×w,
    ``solidify(...) > BOUNDARY``), held while the model still half believes it (HOLD, HELD). Never
    writes into ``alpha``."""
    if held is not None:  # a new array: the caller's alpha stays as it is
        alpha = np.where(held & (alpha > HOLD), np.maximum(alpha, HELD), alpha)
    body = alpha > BOUNDARY
    if not body.any():
        return np.zeros_like(alpha)
    # (b) Holes first: a mottled patch (the cap) is then one wide region that the opening below keeps.
    body = _fill_small_holes(body, HOLE_SHARE)
    # (a) Unconfident thin structures. The opening runs on the weak part only — body pixels farther
    # than REACH from a confident one — and takes away only what it finds on the outside of the
    # person: a weak strip glued along the person's side (the flag pole) or sticking out of it goes,
    # while a thin confident part (a finger at α ≥ 0.9), the edge ramp next to confident pixels and
    # weak pockets among confident ones (the mottled cap) stay.
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * REACH + 1, 2 * REACH + 1))
    near = cv2.dilate((alpha >= CONFIDENT).astype(np.uint8), reach).astype(bool)
    weak = (body & ~near).astype(np.uint8)
    size = max(3, round(THIN_SHARE * max(alpha.shape)) | 1)
    opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    wide = cv2.morphologyEx(weak, cv2.MORPH_OPEN, opening)
    thin = weak & ~wide
    kept = body.copy() if bars is None else body & ~bars
    if thin.any():
        kept &= ~_touching_outside(thin, body)
    # (a') Thin weak strips of a colour the person does not have beside them: the gold pole along the
    # black cap band and the ear, where the weak part is as wide as band and pole together and the
    # opening above keeps it. Only the thin part of what is unlike goes (a wide weak patch, such as
    # a cap's white top, is the person's).
    if rgb is not None:
        edge = cv2.dilate((~kept).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # 2 px of the outside
        unlike = unlike_the_person(alpha, rgb, kept & edge & (alpha < SURE)).astype(np.uint8)
        strips = unlike & ~cv2.morphologyEx(unlike, cv2.MORPH_OPEN, opening)
        if strips.any():
            kept &= ~_touching_outside(strips, kept)
    # (d) Islands, including those the opening or a bar has just cut off (a pole's lower end, the
    # flag's stripe beside it).
    islands = small_regions(kept, ISLAND_SHARE)
    if islands is not None:
        kept &= ~islands
    # (c) The core: everything inside the body's outer ring is opaque; on the ring itself the
    # decision band keeps the boundary's sub-pixel position.
    core = cv2.erode(kept.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    lo, hi = BAND
    t = np.clip((alpha - lo) / (hi - lo), 0, 1)
    out = t * t * (3 - 2 * t)  # smoothstep: flat at both ends of the band
    # Whatever was removed goes, with a one-pixel rim so no faint halo of it is left.
    removed = cv2.dilate((body & ~kept).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~kept
    out[removed] = 0
    out[core] = 1
    return out.astype(np.float32)


def reach_of(solid: np.ndarray, bars: np.ndarray | None = None) -> np.ndarray:
    """1 within one working pixel of the solid matte and off the background ``bars``, else 0
    (float32, the working size).

    The colour-guided feathering fits α as a linear function of colour per window, so in
    a window holding hair, a gold pole and blue sky it can give the pole back part of the
    α that :func:`solidify` took away. Its soft edge is allowed one working pixel (≈ 4 px
    in 720p) beyond the decision and no further, and never onto a bar, whose colour may be
    the person's own beside it.
    """
    reach = cv2.dilate((solid > REACH_FLOOR).astype(np.float32), np.ones((3, 3), np.uint8))
    if bars is not None:
        reach[bars] = 0
    return reach
