"""Matte post-processing: temporal smoothing, a matte that holds together, edge-aware refinement.

Smoothing uses a time constant in seconds (so it does not change with the frame
rate). The person's region is then decided on a small working copy
(:mod:`models.matting.solidify`: no see-through interior, no background glued on,
no background bar running into the edge, :mod:`models.matting.background_bars`)
and feathered by a fast guided filter guided by the colours of the same frame
that is composited, which gives the soft edges back at full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from models.frame import Frame, on_device
from models.matting.background_bars import StreamBars
from models.matting.base import Matte
from models.matting.solidify import BOUNDARY, WORK_LONG_SIDE, reach_of, solidify
from models.ops.guided import (fast_guided_filter, fast_guided_filter_colour, fast_guided_filter_colour_tensor,
                               fast_guided_filter_tensor)
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import alpha_array, alpha_tensor, resize, rgb_to_gray
from models.ops.temporal import TimeEMA, follows

NEGLIGIBLE_ALPHA = 0.25 / 255
#: The colour-guided feathering is evaluated at most at this long side and enlarged: twice the
#: 320-pixel decision, so a 720p edge stays within ~2 px of the full-resolution one, at a third
#: of the cost (the full-resolution pass was ~5 ms per 720p frame on a 2-core CPU).
COLOUR_APPLY_LONG_SIDE = 2 * WORK_LONG_SIDE


@dataclass
class MatteOptions:
    smoothing_s: float = 0.05  # time constant of the alpha EMA; 0 disables
    solidify: bool = True      # decide the person's region on a working copy (models.matting.solidify)
    refine: bool = True        # guided-filter refinement against the frame
    colour_guide: bool = True  # guide the refinement by the frame's colours rather than its grey level
    radius: int = 3            # grey guide; pixels of the working copy
    eps: float = 2e-3
    # Colour guide: three channels explain more of the matte per window, so a smaller window keeps the
    # edge tight (a wider one lets the flag pole beside a head back in); ε of the order of the frame
    # noise's variance per channel (~(8/255)²).
    colour_radius: int = 2
    colour_eps: float = 1e-3


class MattePostprocess:
    """Stateful post-processing applied to every matte in stream order."""

    def __init__(self, options: MatteOptions | None = None) -> None:
        self.options = options or MatteOptions()
        self._ema = TimeEMA(self.options.smoothing_s)
        self._bars = StreamBars()
        self._decided_at: tuple[int, tuple[int, ...]] | None = None  # frame index and size
        self._person: np.ndarray | None = None  # the person decided there

    def reset(self) -> None:
        self._ema.reset()
        self._bars.reset()
        self._decided_at = self._person = None

    def _decide(self, index: int, small: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(solid, bars) of the working copy ``small`` (host float32) of frame ``index``: the background
        bars and :func:`solidify`, holding the person decided on the previous frame when this one
        follows it (a dropped frame between them is tolerated)."""
        bars = self._bars(index, small, rgb)
        held = self._person if follows(index, small.shape, self._decided_at, 2) else None
        solid = solidify(small, rgb, bars, held)
        self._decided_at, self._person = (index, small.shape), solid > BOUNDARY
        return solid, bars

    def __call__(self, frame: Frame, matte: Matte) -> Matte:
        alpha = matte.alpha
        if self.options.smoothing_s > 0:
            alpha = self._ema.update(alpha, frame.timestamp)
        if on_device(alpha):
            alpha, excluded = self._device_alpha(frame, alpha)
            return replace(matte, alpha=alpha, decided=self.options.solidify, excluded=excluded)
        o = self.options
        h, w = alpha.shape
        solid = bars = None
        if o.solidify:  # a new array: the EMA state is never written
            small = cv2.resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE), interpolation=cv2.INTER_AREA)
            solid, bars = self._decide(frame.index, small, frame.scaled(WORK_LONG_SIDE))
            alpha = solid
        if o.refine and o.colour_guide:
            alpha = fast_guided_filter_colour(frame.rgb, alpha, o.colour_radius, o.colour_eps, WORK_LONG_SIDE,
                                              COLOUR_APPLY_LONG_SIDE, frame.scaled)
            if solid is not None:
                alpha *= cv2.resize(reach_of(solid, bars), (w, h), interpolation=cv2.INTER_LINEAR)
        elif o.refine:
            gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gray *= np.float32(1 / 255)
            alpha = fast_guided_filter(gray, alpha, o.radius, o.eps, WORK_LONG_SIDE)
        elif o.solidify:
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            alpha = np.array(alpha, dtype=np.float32)  # a copy: the EMA state must stay untouched
        # Models leave faint confidences (down to 1e-42) all over the background. Below a
        # quarter of a grey level they cannot change a pixel, but they would make every later
        # stage treat the whole frame as foreground (harmonizers work in the box of alpha > 0).
        cv2.threshold(alpha, NEGLIGIBLE_ALPHA, 0, cv2.THRESH_TOZERO, dst=alpha)
        return replace(matte, alpha=alpha, decided=o.solidify, excluded=bars)

    def _device_alpha(self, frame: Frame, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same steps on the device (1×1×H×W): (alpha, excluded); never writes into the EMA state."""
        o = self.options
        h, w = alpha.shape[-2:]
        solid = bars = None
        if o.solidify:
            # The decision needs connected components, which have no device kernel: the working copy
            # (a few hundred kilobytes at most) goes to the host and back.
            small = resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE))
            solid, bars = self._decide(frame.index, alpha_array(small), frame.scaled(WORK_LONG_SIDE))
            alpha = alpha_tensor(solid, small.device)
        if o.refine and o.colour_guide:
            alpha = fast_guided_filter_colour_tensor(frame.pixels, alpha, o.colour_radius, o.colour_eps,
                                                     WORK_LONG_SIDE, COLOUR_APPLY_LONG_SIDE)
            if solid is not None:
                alpha = alpha * resize(alpha_tensor(reach_of(solid, bars), alpha.device), (w, h))
        elif o.refine:
            alpha = fast_guided_filter_tensor(rgb_to_gray(frame.pixels), alpha, o.radius, o.eps, WORK_LONG_SIDE)
        elif o.solidify:
            alpha = resize(alpha, (w, h))
        excluded = None if bars is None else alpha_tensor(bars.astype(np.float32), alpha.device) > 0.5
        return torch.where(alpha > NEGLIGIBLE_ALPHA, alpha, 0.0), excluded
