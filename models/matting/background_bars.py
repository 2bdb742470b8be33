"""Straight thin background structures that run into the person's edge: flag poles, cables, door stops.

A segmentation model half believes a thin background bar where it passes close to the person,
and where the bar has the colour of the person's edge beside it (the sample clip's gold pole
beside an ear) no colour test can tell the two apart. Its shape can: a bar is two straight,
antiparallel edges a few pixels apart, and a bar that also runs on through the clear
background, away from the person, is the background's all along its length — a person's own
edges neither come in such pairs nor leave the body.

Edges are found with the fast line detector of Lee et al. (2014, "Outdoor place recognition in
urban environments using straight lines"; OpenCV's ``ximgproc.FastLineDetector``), which, like
LSD, orients each segment by its gradient so that a bar's two sides point in opposite directions.
All work is on the matting's small working copy: ~1.2 ms per search at 320×180 on a 2-core CPU,
and a stream searches every third frame (:class:`StreamBars`).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from models.matting.solidify import UNLIKE
from models.ops.temporal import StreamPoint, follows

#: Segments shorter than this share of the working long side are not looked at (16 px at 320: a
#: bar's sides are long, and the detector takes 0.5 ms here instead of 1.4 ms at 5 px).
SEGMENT_SHARE = 0.05
#: A bar is at least this share of the working long side long (19 px at 320: the sample clip's pole
#: is ~90 px beside the ear and ~24 px above the cap; a person's straight edges of that length come
#: alone, without an antiparallel partner).
BAR_LENGTH_SHARE = 0.06
#: ... and at most this share wide (5 px at 320, ~20 px in 720p; the pole is ~3 px).
BAR_WIDTH_SHARE = 0.016
#: Two edges are a bar's sides when their directions are opposite within this angle.
PARALLEL_DEGREES = 8.0
#: How much of a bar must lie in the clear background, farther than CLEAR_GAP working pixels from the
#: person's body (α > 0.5): CLEAR_SHARE of its length, and at least CLEAR_LENGTH_SHARE of the working
#: long side (13 px at 320). A wrinkle beside the jaw and the jaw's edge look like a bar, but leave
#: the body for a few pixels at most where the matte is a little too tight; the pole beside the ear
#: runs ~60 px through the flag, the one above the cap ~20 px.
CLEAR_SHARE = 0.3
CLEAR_LENGTH_SHARE = 0.04
CLEAR_GAP = 3
#: Points sampled along each bar's centre line for that test.
AXIS_SAMPLES = 64
#: How deep into the person's body (α > 0.5) a bar is taken, as a share of the working long side
#: (8 px at 320): the pole beside the ear lies 1–8 px inside the model's body; a background line
#: that lines up with a stripe of the person's clothes is cut at the rim, not through the body.
INSIDE_SHARE = 0.025
#: A bar is carried on past its found edges (:func:`extend_bar`) while its axis keeps the colour of
#: its last EXTEND_FROM pixels; colours differ beyond UNLIKE levels (the colour test's threshold).
EXTEND_FROM = 8
#: Bars are searched on every EVERY-th frame of a stream (:class:`StreamBars`): 3 is 0.1 s at 30 FPS.
EVERY = 3


def _segments(gray: np.ndarray) -> np.ndarray:
    """N×4 float32 (x0, y0, x1, y1) straight edges of ``gray`` (uint8), oriented by their gradient."""
    if min(gray.shape) < 6:  # the detector fails an assertion on thinner images; no bar fits in them anyway
        return np.zeros((0, 4), np.float32)
    length = max(2, round(SEGMENT_SHARE * max(gray.shape)))
    found = cv2.ximgproc.createFastLineDetector(length_threshold=length).detect(gray)
    return np.zeros((0, 4), np.float32) if found is None else found.reshape(-1, 4)


def bar_polygons(segments: np.ndarray, long_side: int) -> np.ndarray:
    """K×4×2 corners of the bars among ``segments``: each long segment swept across to the antiparallel
    partner beside it (within the bar width) that runs along it the longest. All pairs at once
    (long segments × segments)."""
    start, end = segments[:, :2], segments[:, 2:]
    vector = end - start
    length = np.hypot(vector[:, 0], vector[:, 1])
    unit = vector / np.maximum(length, 1e-6)[:, None]
    long = np.flatnonzero(length >= BAR_LENGTH_SHARE * long_side)
    if len(segments) < 2 or long.size == 0:
        return np.zeros((0, 4, 2), np.float32)
    u = unit[long]                                         # L×2
    normal = np.stack((-u[:, 1], u[:, 0]), 1)
    origin = start[long][:, None]                          # L×1×2
    offset = (((start + end) / 2 - origin) * normal[:, None]).sum(-1)  # L×S: partner middles from each line
    a, b = ((start - origin) * u[:, None]).sum(-1), ((end - origin) * u[:, None]).sum(-1)
    overlap = np.minimum(np.maximum(a, b), length[long][:, None]) - np.maximum(np.minimum(a, b), 0)
    partner = ((u @ unit.T <= -math.cos(math.radians(PARALLEL_DEGREES))) & (np.abs(offset) >= 0.5)
               & (np.abs(offset) <= BAR_WIDTH_SHARE * long_side) & (overlap >= 0.5 * length))
    partner[np.arange(long.size), long] = False
    found = partner.any(1)
    best = np.argmax(np.where(partner, overlap, -np.inf), 1)
    shift = normal * offset[np.arange(long.size), best][:, None]
    corners = np.stack((start[long], end[long], end[long] + shift, start[long] + shift), 1)
    return corners[found].astype(np.float32)


def _colours_at(colours: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The colours (float32) of the pixels nearest to ``points`` (…×2 x, y), clipped to the image."""
    h, w = colours.shape[:2]
    xy = (points + 0.5).astype(int)
    return colours[np.clip(xy[..., 1], 0, h - 1), np.clip(xy[..., 0], 0, w - 1)]


def extend_bar(corners: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``corners`` with both ends carried on along the bar's axis for as long as the bar visibly goes
    on where its edges were not found: the axis keeps the colour of the bar's last EXTEND_FROM pixels
    (within UNLIKE) and at least one flank differs from it (beyond UNLIKE). The sample clip's pole
    loses its left edge where it passes a white stripe of the flag and its right edge where it
    passes the ear; a bar running behind a person of its own colour has both flanks alike and stops."""
    h, w = colours.shape[:2]
    tips = np.stack(((corners[1] + corners[2]) / 2, (corners[0] + corners[3]) / 2))  # the axis's ends
    length = float(np.hypot(*(tips[0] - tips[1])))
    across = corners[3] - corners[0]
    width = float(np.hypot(*across))
    if length < 1 or width < 1e-3:
        return corners
    u = (tips[0] - tips[1]) / length
    outward = np.stack((u, -u))[:, None]                   # 2×1×2: the end, then the start
    flank = across / width * (width / 2 + 1.5)
    inside = tips[:, None] - outward * np.arange(min(EXTEND_FROM, int(length)))[:, None]
    reference = np.median(_colours_at(colours, inside), 1)[:, None]  # 2×1×3
    ahead = tips[:, None] + outward * np.arange(1, int(length) + 1)[:, None]  # 2×L×2
    samples = _colours_at(colours, np.stack((ahead, ahead + flank, ahead - flank)))  # 3×2×L×3
    differ = np.sqrt(((samples - reference) ** 2).sum(-1)) > UNLIKE  # 3×2×L
    in_frame = (ahead[..., 0] >= 0) & (ahead[..., 0] < w) & (ahead[..., 1] >= 0) & (ahead[..., 1] < h)
    going = ~differ[0] & (differ[1] | differ[2]) & in_frame
    steps = np.where(going.all(1), going.shape[1], np.argmin(going, 1))  # to the first pixel that stops it
    moved = outward[:, 0] * steps[:, None]
    return corners + moved[[1, 0, 0, 1]]


def background_bars(alpha: np.ndarray, rgb: np.ndarray) -> np.ndarray | None:
    """Bool mask of the pixels of ``alpha`` (float32 working copy) that belong to a background bar
    running from the clear background to the person; None when there is none. ``rgb``: the frame at
    the same size (uint8).

    The model's confidence is not consulted inside a bar: the sample clip's pole is α ≈ 1 where it
    passes between the ear and a stripe of the flag. A person in front of a bar breaks its edges, so
    the bar found ends where the person begins.
    """
    h, w = alpha.shape
    body = (alpha > 0.5).astype(np.uint8)
    if not body.any():
        return None
    polygons = bar_polygons(_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), max(h, w))
    if len(polygons) == 0:
        return None
    gap = 2 * CLEAR_GAP + 1
    near = cv2.dilate(body, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap))).astype(bool)
    # Each bar's centre line, sampled at AXIS_SAMPLES points: how much of it is clear of the body.
    tail, tip = (polygons[:, 0] + polygons[:, 3]) / 2, (polygons[:, 1] + polygons[:, 2]) / 2
    length = np.hypot(*(tip - tail).T)
    points = tail[:, None] + np.linspace(0, 1, AXIS_SAMPLES)[:, None] * (tip - tail)[:, None]
    on_near = near[np.clip((points[..., 1] + 0.5).astype(int), 0, h - 1),
                   np.clip((points[..., 0] + 0.5).astype(int), 0, w - 1)]
    clear = (~on_near).mean(1) * length
    taken = on_near.any(1) & (clear >= np.maximum(CLEAR_SHARE * length, CLEAR_LENGTH_SHARE * max(h, w)))
    if not taken.any():
        return None
    mask = np.zeros((h, w), np.uint8)
    colours = rgb.astype(np.float32)
    for corners in polygons[taken]:
        cv2.fillConvexPoly(mask, np.round(extend_bar(corners, colours) * 16).astype(np.int32), 1,
                           cv2.LINE_8, shift=4)
    depth = cv2.distanceTransform(body, cv2.DIST_L2, 3)
    bars = mask.view(bool) & (depth <= INSIDE_SHARE * max(h, w))
    return bars if bars.any() else None


class StreamBars:
    """:func:`background_bars` of a stream's frames, found on every EVERY-th frame and reused for the
    frames between. Bars belong to the background, which does not move in a tenth of a second, and a
    search costs ~1.2 ms of the matting thread, which shares two cores with blending and
    harmonization. A frame that does not follow the last one searched (a still, a seek, a new
    size, a pause) is searched afresh."""

    def __init__(self, every: int = EVERY) -> None:
        self.every = every
        self.reset()

    def reset(self) -> None:
        self._searched: StreamPoint | None = None
        self._bars: np.ndarray | None = None

    def __call__(self, index: int, t: float, alpha: np.ndarray, rgb: np.ndarray) -> np.ndarray | None:
        """The bars of frame ``index`` taken at ``t`` (seconds)."""
        if not follows(index, t, alpha.shape, self._searched, self.every - 1):
            self._bars = background_bars(alpha, rgb)
            self._searched = index, t, alpha.shape
        return self._bars

