"""Matte post-processing: temporal smoothing, decisions among unsure pixels, edge-aware refinement.

Smoothing uses a time constant in seconds (so it does not change with the frame
rate). On a small working copy, unsure islands are dropped and unsure pockets
inside the person closed (:mod:`models.matting.confidence`); a fast guided filter
guided by the colours of the same frame that is composited then aligns the soft
edge with the frame at full resolution, and the result is clamped back to the
model's answer wherever the model is sure, beyond a thin rim around the outline.
Post-processing does no harm: it was judged on real video
(``python -m models.training.evaluate_footage``) against the raw model.

The default steps are local, so they run on the matte at the size the model answers at
(:meth:`~models.matting.base.Matting.coarse`: 640 pixels across for MediaPipe's selfie model, a
quarter of a 720p frame's pixels and a ninth of a 1080p one's) and the result is enlarged once, at
the end; before, the model's answer was enlarged first and smoothed, clamped and thresholded at the
frame's size, which cost 2.5 ms of a 720p frame's 6 ms of post-processing (2-core EPYC, ``bench --parts``).
On real footage the two orders agree within 0.1 point of IoU and boundary F-measure.

The earlier region decision (:mod:`models.matting.solidify` with background bars and a
hold in time) is kept as an option that is off by default: it overrode confident pixels
and cut faces on real video.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from models.frame import Frame, on_device
from models.matting.background_bars import StreamBars
from models.matting.base import Matte
from models.matting.confidence import (CLEAR_BACKGROUND, CLEAR_PERSON, SURE_BACKGROUND, SURE_PERSON, changed_box,
                                       close_unsure_holes, close_unsure_holes_tensor, drop_unsure_islands,
                                       drop_unsure_islands_tensor, guard, guard_tensor, keep_sides, keep_sides_tensor,
                                       sure_masks, sure_masks_tensor)
from models.matting.landmarks import PartGuard, whole_frame
from models.matting.solidify import BOUNDARY, WORK_LONG_SIDE, reach_of, solidify
from models.ops.guided import (fast_guided_filter, fast_guided_filter_colour, fast_guided_filter_colour_tensor,
                               fast_guided_filter_tensor)
from models.ops.regions import Box
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import alpha_array, alpha_tensor, enlarge, resize, rgb_to_gray
from models.ops.temporal import StreamPoint, TimeEMA, follow_share, follows

log = logging.getLogger(__name__)

NEGLIGIBLE_ALPHA = 0.25 / 255
#: The colour-guided feathering is evaluated at most at this long side and enlarged: twice the
#: 320-pixel decision, so a 720p edge stays within ~2 px of the full-resolution one, at a third
#: of the cost (the full-resolution pass was ~5 ms per 720p frame on a 2-core CPU).
COLOUR_APPLY_LONG_SIDE = 2 * WORK_LONG_SIDE


@dataclass
class MatteOptions:
    smoothing_s: float = 0.1   # time constant of the alpha EMA where the frame is still; 0 disables
    #: Where the frame itself moves by (lo) to (hi) grey levels (on the working copy, 3×3-blurred), the
    #: EMA follows the model progressively faster, and at once beyond (models.ops.temporal.follow_share):
    #: it smooths the model's flicker where the picture is still and never lags behind motion.
    #: None: a plain EMA.
    motion: tuple[float, float] | None = (4.0, 16.0)
    #: Where the model's answer for this frame is clearly one way (models.matting.confidence.CLEAR_PERSON,
    #: CLEAR_BACKGROUND: 0.7, 0.3), the smoothed matte stays on that side of 0.5 (keep_sides). The EMA is
    #: there to calm the model's wobble near 0.5; farther out it only made the outline trail a motion that
    #: the frame's grey change understates (on real footage a fast skater's boundary F-measure fell below
    #: the raw model's). None: the EMA alone decides.
    smoothing_sides: tuple[float, float] | None = (CLEAR_BACKGROUND, CLEAR_PERSON)
    islands: bool = True       # drop small unsure islands (models.matting.confidence)
    close_unsure: bool = True  # close small enclosed holes where the model is merely unsure
    #: Guided-filter refinement against the frame. Off: on real footage it raised IoU but lowered the
    #: boundary F-measure and did not lower the α error along the outline (evaluate_footage).
    refine: bool = False
    colour_guide: bool = True  # guide the refinement by the frame's colours rather than its grey level
    guard: bool = True         # clamp back to the model where it is sure, beyond a thin rim
    faces: bool = True         # faces (face-mesh landmarks) are always the person (models.matting.landmarks)
    hands: bool = True         # likewise hands (hand landmarks)
    #: The earlier region decision (models.matting.solidify: holes filled, background bars, a hold in
    #: time). Off: on real video it overrode confident pixels and cut faces.
    solidify: bool = False
    radius: int = 3            # grey guide; pixels of the working copy
    eps: float = 2e-3
    # Colour guide: three channels explain more of the matte per window, so a smaller window keeps the
    # edge tight; ε of the order of the frame noise's variance per channel (~(8/255)²).
    colour_radius: int = 2
    colour_eps: float = 1e-3

    @property
    def regions_decided(self) -> bool:
        """Whether stray islands are decided here (``Matte.decided``), so that blends leave them alone."""
        return self.solidify or self.islands

    @property
    def model_on_sure_sides(self) -> bool:
        """Whether the model's answer that the decisions start from is on the raw answer's side of 0.5
        wherever that is sure: the raw answer itself, or smoothed keeping sides at least as wide as sure. Then
        the final clamp (keep_sides) has only what the decisions changed to visit."""
        sides = self.smoothing_sides
        return self.smoothing_s <= 0 or (
            sides is not None and sides[0] >= SURE_BACKGROUND and sides[1] <= SURE_PERSON)

    @property
    def decides(self) -> bool:
        """Whether any step works on the working copy of the matte."""
        return self.solidify or self.islands or self.close_unsure or self.guard


@dataclass(frozen=True)
class Decision:
    """What the post-processing decided on the working copy of a matte (all at the working size)."""

    alpha: np.ndarray                 # the decided working copy
    change: np.ndarray | None         # alpha minus the model's working copy; None when nothing changed or solidify
    bars: np.ndarray | None           # solidify only: background bars (Matte.excluded)
    reach: np.ndarray | None          # solidify only: where the feathering may reach (reach_of)
    sure: tuple[np.ndarray, np.ndarray] | None  # guard: (sure person, sure background), sure_masks


def _part_guard(o: MatteOptions) -> PartGuard | None:
    """The face and hand guard the options ask for; None when they ask for none or mediapipe, whose landmark
    models it runs, is not installed (a machine given only the torch selfie port: the GPU check's image)."""
    if not (o.faces or o.hands):
        return None
    if importlib.util.find_spec("mediapipe") is None:
        log.warning("the face and hand guards need mediapipe, which is not installed; they are off")
        return None
    return PartGuard(o.faces, o.hands)


class MattePostprocess:
    """Stateful post-processing applied to every matte in stream order."""

    def __init__(self, options: MatteOptions | None = None, live: bool = False) -> None:
        self.options = options or MatteOptions()
        #: Frames come in real time: the face and hand guards run their landmark models on a worker (``PartWatch``).
        self.live = live
        self._ema = TimeEMA(self.options.smoothing_s)
        self._bars = StreamBars()
        self._decided_at: StreamPoint | None = None  # the frame the person was decided on
        self._person: np.ndarray | None = None  # the person decided there
        self._last_at: StreamPoint | None = None  # the previous frame
        self._grey: np.ndarray | None = None  # the previous frame's blurred grey working copy
        o = self.options
        self._parts = _part_guard(o)

    def reset(self) -> None:
        self._ema.reset()
        self._bars.reset()
        self._decided_at = self._person = self._last_at = self._grey = None
        if self._parts is not None:
            self._parts.reset()

    def close(self) -> None:
        """Release the landmark models."""
        if self._parts is not None:
            self._parts.close()

    def _guarded_parts(self, frame: Frame, grey: np.ndarray, continued: bool) -> tuple[Box, np.ndarray] | None:
        """Where faces and hands are (:func:`~models.matting.landmarks.paint_box`: a box of the frame and float32
        mask there), or None; ``grey``: the frame's grey working copy."""
        return None if self._parts is None else self._parts(frame.rgb, grey, frame.timestamp, continued, self.live)

    def _follow(self, grey: np.ndarray, continued: bool) -> np.ndarray | None:
        """The share of the model's new answer to take at once (working size, float32), from how much
        the frame (``grey``, its grey working copy) moved since the previous one; None for a frame
        that does not continue the stream."""
        lo, hi = self.options.motion
        blurred = cv2.blur(grey, (3, 3)).astype(np.float32)
        previous, self._grey = self._grey, blurred
        if previous is None or not continued:
            return None
        return follow_share(cv2.absdiff(blurred, previous), lo, hi)

    def _smooth(self, frame: Frame, raw, grey: np.ndarray, continued: bool):
        """The raw matte smoothed in time, on the model's side of 0.5 where it is clearly one way (never
        to be written: the EMA's state, or a copy of it when the sides are kept)."""
        follow = self._follow(grey, continued) if self.options.motion is not None else None
        if follow is not None and on_device(raw):
            follow = alpha_tensor(follow, raw.device)
        smoothed = self._ema.update(raw, frame.timestamp, follow)
        sides = self.options.smoothing_sides
        if sides is None:
            return smoothed
        if on_device(smoothed):
            return keep_sides_tensor(smoothed, raw, sides)
        return keep_sides(smoothed.copy(), raw, sides)

    def _solidify(self, frame: Frame, small: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(solid, bars) of the working copy ``small`` (host float32) of frame ``index``: the background
        bars and :func:`solidify`, holding the person decided on the previous frame when this one
        follows it (a dropped frame between them is tolerated)."""
        index, t = frame.index, frame.timestamp
        bars = self._bars(index, t, small, rgb)
        held = self._person if follows(index, t, small.shape, self._decided_at, 2) else None
        solid = solidify(small, rgb, bars, held)
        self._decided_at, self._person = (index, t, small.shape), solid > BOUNDARY
        return solid, bars

    def _decide(self, frame: Frame, small: np.ndarray) -> Decision:
        """The decisions on the working copy ``small`` of the (smoothed) model answer."""
        o = self.options
        if o.solidify:
            solid, bars = self._solidify(frame, small, frame.scaled(WORK_LONG_SIDE))
            return Decision(solid, None, bars, reach_of(solid, bars), None)
        decided = small
        if o.islands:
            decided = drop_unsure_islands(decided)
        if o.close_unsure:
            decided = close_unsure_holes(decided)
        return Decision(decided, None if decided is small else decided - small, None, None,
                        sure_masks(small) if o.guard else None)

    def __call__(self, frame: Frame, matte: Matte) -> Matte:
        """``matte`` post-processed, at the frame's size. ``matte`` may be smaller (:meth:`Matting.coarse`):
        on the host the default steps, all local, run at its size and the result is enlarged once; the
        opt-in refinement and region decision, and the device path, take it enlarged first."""
        # The motion measure and the part tracker both read the frame's grey working copy and both
        # need to know whether this frame continues the stream (a dropped frame is tolerated).
        grey = cv2.cvtColor(frame.scaled(WORK_LONG_SIDE), cv2.COLOR_RGB2GRAY)
        at, self._last_at = self._last_at, (frame.index, frame.timestamp, frame.rgb.shape)
        continued = follows(frame.index, frame.timestamp, frame.rgb.shape, at, 2)
        o = self.options
        size = frame.size
        if not on_device(matte.alpha) and (o.refine or o.solidify):
            matte = replace(matte, alpha=enlarge(matte.alpha, size))
        alpha = matte.alpha
        if o.smoothing_s > 0:
            alpha = self._smooth(frame, alpha, grey, continued)
        if on_device(alpha):
            alpha, excluded = self._device_alpha(frame, alpha, matte.alpha, grey, continued)
            return replace(matte, alpha=alpha, decided=o.regions_decided, excluded=excluded)
        h, w = alpha.shape
        model = alpha  # the model's answer (smoothed); never written
        d = None
        changed = None  # where the decisions alone made α differ from the model's answer
        if o.decides:
            d = self._decide(frame, cv2.resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE),
                                               interpolation=cv2.INTER_AREA))
            alpha = d.alpha
        if o.refine and o.colour_guide:
            alpha = fast_guided_filter_colour(frame.rgb, alpha, o.colour_radius, o.colour_eps, WORK_LONG_SIDE,
                                              COLOUR_APPLY_LONG_SIDE, frame.scaled)
            if d is not None and d.reach is not None:
                alpha *= cv2.resize(d.reach, (w, h), interpolation=cv2.INTER_LINEAR)
        elif o.refine:
            gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gray *= np.float32(1 / 255)
            alpha = fast_guided_filter(gray, alpha, o.radius, o.eps, WORK_LONG_SIDE)
        elif o.solidify:  # the decided matte itself
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        elif d is not None and d.change is not None:  # only what the decisions changed, enlarged
            alpha = cv2.add(model, cv2.resize(d.change, (w, h), interpolation=cv2.INTER_LINEAR))
            np.clip(alpha, 0.0, 1.0, out=alpha)
            changed = changed_box(d.change, (h, w))
        else:
            # Neither the EMA's state nor the model's matte may be written; the smoothing that keeps the model's
            # sides hands over a copy of its own already.
            owned = model is not matte.alpha and model is not self._ema.value
            alpha = model if owned else np.array(model, dtype=np.float32)
        if d is not None and d.sure is not None:  # solidify decides no sure masks
            if o.refine:  # refinement may move α anywhere
                guard(alpha, model, d.sure)
            elif changed is not None:  # elsewhere α is the model's answer: nothing to clamp
                guard(alpha, model, d.sure, changed)
            if o.refine or not o.model_on_sure_sides:
                keep_sides(alpha, matte.alpha)
            elif changed is not None:  # elsewhere α is the model's answer, on the sure sides already
                alpha[changed] = keep_sides(alpha[changed].copy(), matte.alpha[changed])
        alpha = enlarge(alpha, size)
        parts = self._guarded_parts(frame, grey, continued)
        if parts is not None:  # raised only in the parts' box
            box, mask = parts
            np.maximum(alpha[box], mask, out=alpha[box])
        # Models leave faint confidences (down to 1e-42) all over the background. Below a
        # quarter of a grey level they cannot change a pixel, but they would make every later
        # stage treat the whole frame as foreground (harmonizers work in the box of alpha > 0).
        cv2.threshold(alpha, NEGLIGIBLE_ALPHA, 0, cv2.THRESH_TOZERO, dst=alpha)
        return replace(matte, alpha=alpha, decided=o.regions_decided, excluded=None if d is None else d.bars)

    def _device_alpha(self, frame: Frame, alpha: torch.Tensor, raw: torch.Tensor, grey: np.ndarray,
                      continued: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same steps on the device (1×1×H×W): (alpha, excluded); never writes into the EMA state.

        The default decisions run on the device too, so nothing here waits for the GPU. Only the opt-in
        solidify takes its working copy (a few hundred kilobytes) to the host: it has no device twin."""
        o = self.options
        h, w = alpha.shape[-2:]
        model = alpha
        d = decided = small = sure = None
        if o.solidify:
            small = resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE))
            d = self._decide(frame, alpha_array(small))
            alpha = alpha_tensor(d.alpha, small.device)
        elif o.decides:
            small = resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE))
            decided, sure = self._decide_tensor(small)
            alpha = decided
        if o.refine and o.colour_guide:
            alpha = fast_guided_filter_colour_tensor(frame.pixels, alpha, o.colour_radius, o.colour_eps,
                                                     WORK_LONG_SIDE, COLOUR_APPLY_LONG_SIDE)
            if d is not None and d.reach is not None:
                alpha = alpha * resize(alpha_tensor(d.reach, alpha.device), (w, h))
        elif o.refine:
            alpha = fast_guided_filter_tensor(rgb_to_gray(frame.pixels), alpha, o.radius, o.eps, WORK_LONG_SIDE)
        elif o.solidify:
            alpha = resize(alpha, (w, h))
        elif decided is not small:
            # What the decisions changed, enlarged (zero where nothing changed: the model's answer itself).
            alpha = (model + resize(decided - small, (w, h))).clamp(0, 1)
        else:
            alpha = model
        if sure is not None:
            alpha = keep_sides_tensor(guard_tensor(alpha, model, sure), raw)
        parts = self._guarded_parts(frame, grey, continued)
        if parts is not None:
            alpha = torch.maximum(alpha, alpha_tensor(whole_frame(parts, (w, h)), alpha.device))
        excluded = None if d is None or d.bars is None else alpha_tensor(d.bars.astype(np.float32), alpha.device) > 0.5
        return torch.where(alpha > NEGLIGIBLE_ALPHA, alpha, 0.0), excluded

    def _decide_tensor(self, small: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """(decided working copy, sure masks or None): :meth:`_decide`'s default steps, on the device."""
        o = self.options
        decided = small
        if o.islands:
            decided = drop_unsure_islands_tensor(decided)
        if o.close_unsure:
            decided = close_unsure_holes_tensor(decided)
        return decided, sure_masks_tensor(small) if o.guard else None
