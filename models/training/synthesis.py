"""Self-supervised training pairs (Harmonizer §3.3) and the complete background.

A real image is its own harmonious target: the masked region is pushed out of
harmony by the six filters run in *reverse* order with random arguments (the
official "adjust" pass), and the network learns the forward-order arguments that
undo it. Each forward filter step has its own target: the image just before the
matching adjust step, so the cascade loss can score every step.
"""
from __future__ import annotations

import cv2
import numpy as np
from torch import Tensor

from models.harmonizers.harmonizer.filters import adjust_filters


def synthesize(real: Tensor, mask: Tensor, args: Tensor) -> tuple[Tensor, list[Tensor]]:
    """(inharmonious composite, per-step targets) from real images.

    ``real`` N×3×H×W in [0,1], ``mask`` N×1×H×W, ``args`` N×6 in [−1,1] (scaled by
    ``ARG_RANGES`` inside). Only the masked region changes. The targets follow
    ``FILTER_ORDER``: target *i* is what filter *i* of the forward chain should
    produce, and the last target is ``real``.
    """
    steps = adjust_filters(real, args, mask, return_all=True)
    return steps[-1], [*reversed(steps[:-1]), real]


def fill_holes(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill where ``known`` is 0 from the known pixels around (push-pull: a masked blur fill
    over an image pyramid, so large holes get coarse colours and small ones fine detail).

    ``rgb`` H×W×3 and ``known`` H×W float32 in [0,1]; unknown pixels never leak in.
    """
    levels = [(rgb * known[..., None], known)]
    while min(levels[-1][1].shape) > 4:
        colour, weight = levels[-1]
        levels.append((cv2.pyrDown(colour), cv2.pyrDown(weight)))
    colour, weight = levels[-1]
    filled = np.broadcast_to(colour.sum((0, 1)) / max(float(weight.sum()), 1e-6), colour.shape)
    for colour, weight in reversed(levels):
        up = cv2.resize(filled, colour.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        # Premultiplied "over": known colour where the weight is full, coarser fill elsewhere.
        filled = colour + (1 - weight[..., None]) * up
    return filled


def complete_background(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The scene without the foreground: ``rgb`` (uint8 H×W×3) with the masked region filled.

    For the complete-background variant the network must not see the foreground's
    true colours behind the synthetic composite, so the region (slightly dilated,
    soft edge included) is filled from its surroundings only (:func:`fill_holes`).
    """
    grow = max(1, max(rgb.shape[:2]) // 64)
    hole = (mask > 0.02).astype(np.uint8)
    hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    filled = fill_holes(rgb.astype(np.float32), 1 - hole.astype(np.float32))
    return np.clip(np.round(filled), 0, 255).astype(np.uint8)
