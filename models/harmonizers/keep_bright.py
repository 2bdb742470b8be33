"""Keep the person bright: how far harmonization may darken or flatten the person.

Harmonization adapts the person to the new scene, but on a call people want to
look good: the person should not lose more brightness or contrast than the
background justifies. The shared machinery (:mod:`models.harmonizers.realtime`)
measures what a predicted transform does to the person's luma on the small copy
the prediction saw and, where the result falls below the floors, adds a *lift*
to the transform: a luma gain and offset, smoothed over time with the transform
and applied after it. It works the same for every harmonizer.

Luma ``Y = 0.299·R + 0.587·G + 0.114·B`` (Rec. 601, OpenCV's grey) in [0,1]. On the
small copy, weighted by the person's soft mask: m₀, s₀ are the mean and standard
deviation of the person's Y before harmonization, m₁, s₁ after the transform; m_b
is the mean Y of the complete background.

Floors::

    m_min = m₀ − min(PULL·max(m₀ − m_b, 0), MAX_DARKEN·m₀)
    s_min = KEEP_CONTRAST·s₀

A darker background may pull the person down by at most ``PULL`` of the gap
between them and never by more than ``MAX_DARKEN`` of the person's own mean; a
background as bright as the person or brighter justifies no darkening. The
person's contrast may fall to ``KEEP_CONTRAST`` of its own.

Lift ``(c, d)``, ``Y' = c·Y + d``::

    c = clip(s_min / s₁, 1, MAX_GAIN)
    d = max(m₁, m_min) − c·m₁

so the person's mean becomes max(m₁, m_min) and its std c·s₁ (before clipping to
[0,1]). As a colour map it adds the same ``(c − 1)·Y + d`` to R, G and B — the 3×4
map ``[I + (c − 1)·𝟙·wᵀ | d·𝟙]`` with ``w`` the luma weights — so the chroma
differences R − G and B − G are kept. The identity lift is (1, 0): a transform that
stays above both floors is left exactly as it is.
"""
from __future__ import annotations

import numpy as np
import torch

from models.frame import Image
from models.ops.colour_transform import pixel_rows, pixel_weights

#: Rec. 601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: Part of the gap to a darker background's mean luma the person may be pulled down by.
PULL = 0.75
#: Largest darkening of the person's mean luma, as a fraction of it, whatever the background.
MAX_DARKEN = 0.25
#: Fraction of its own luma std the person's contrast may fall to.
KEEP_CONTRAST = 0.9
#: Largest contrast gain of a lift (a transform that flattens the person to nothing is not blown up).
MAX_GAIN = 2.0
#: The lift that changes nothing: gain 1, offset 0.
NO_LIFT = np.array([1.0, 0.0], np.float32)
#: A lift that moves no pixel's luma by more than this (half a grey level) changes nothing in uint8.
NEGLIGIBLE = 0.5 / 255


def _luma(image: Image) -> torch.Tensor:
    """N float64 luma values in [0,1], in the order of :func:`~models.ops.colour_transform.pixel_rows`."""
    rows = pixel_rows(image)
    return rows @ torch.from_numpy(LUMA).to(rows)


def mean_luma(image: Image) -> float:
    """The mean luma of ``image`` (uint8 or float H×W×3, or a 1×3×H×W tensor)."""
    return float(_luma(image).mean())


def luma_stats(image: Image, mask: Image) -> tuple[float, float]:
    """(mean, std) of the luma of ``image`` weighted by the soft ``mask``; (0, 0) for an empty mask."""
    y = _luma(image)
    w = pixel_weights(mask).to(y.device)
    total = w.sum()
    if total < 1:
        return 0.0, 0.0
    mean = (w * y).sum() / total
    return float(mean), float(((w * (y - mean) ** 2).sum() / total).sqrt())


def floors(before: tuple[float, float], background_mean: float) -> tuple[float, float]:
    """(m_min, s_min) for the person's luma (mean, std) ``before`` harmonization over a background of mean luma
    ``background_mean``: m₀ − min(PULL·max(m₀ − m_b, 0), MAX_DARKEN·m₀) and KEEP_CONTRAST·s₀."""
    mean, std = before
    return mean - min(PULL * max(mean - background_mean, 0.0), MAX_DARKEN * mean), KEEP_CONTRAST * std


def lift_for(before: tuple[float, float], after: tuple[float, float], background_mean: float) -> np.ndarray:
    """The lift (c, d) that raises the person's luma (mean, std) ``after`` the transform to the floors of ``before``:
    c = clip(s_min / s₁, 1, MAX_GAIN), d = max(m₁, m_min) − c·m₁; :data:`NO_LIFT` above both floors."""
    (mean_min, std_min), (mean, std) = floors(before, background_mean), after
    gain = float(np.clip(std_min / std, 1.0, MAX_GAIN)) if std > 0 else 1.0
    return np.array([gain, max(mean, mean_min) - gain * mean], np.float32)


def changes_pixels(lift: np.ndarray) -> bool:
    """Whether the lift moves some luma in [0,1] by more than :data:`NEGLIGIBLE`:
    max over Y of |(c − 1)·Y + d| = max(|d|, |c − 1 + d|)."""
    gain, offset = (float(v) for v in lift)
    return max(abs(offset), abs(gain - 1 + offset)) > NEGLIGIBLE


def lift_affine(lift: np.ndarray) -> np.ndarray:
    """The lift (c, d) as a 3×4 colour map ``[I + (c − 1)·𝟙·wᵀ | d·𝟙]`` (12 numbers, row order)."""
    gain, offset = (float(v) for v in lift)
    m = np.hstack([np.eye(3) + (gain - 1) * np.outer(np.ones(3), LUMA), np.full((3, 1), offset)])
    return m.reshape(12).astype(np.float32)
