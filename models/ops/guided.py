"""Fast guided filter (He & Sun 2015): edge-aware refinement of a soft matte.

The linear coefficients ``a, b`` of ``q = a·I + b`` are solved on a small copy
and upsampled, so full-resolution work is two resizes and one multiply-add.
The guide is the frame's grey level, or its colour (He, Sun & Tang 2013,
"Guided Image Filtering", Eq. 14–16: a 3×3 covariance solve per window).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from models.frame import Frame
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import box_blur, resize


def _is_work_copy(src_shape: tuple[int, ...], full: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether a matte of ``src_shape`` (…, H, W) is already the working copy of ``size`` (w, h) — a
    matte decided there, e.g. by :mod:`models.matting.solidify` — rather than at the frame's ``full`` size."""
    shape = tuple(src_shape[-2:])[::-1]
    if shape not in (size, full):
        raise ValueError(f"the matte is {shape[0]}×{shape[1]}; give it at the frame's size {full[0]}×{full[1]} "
                         f"or at the working size {size[0]}×{size[1]}")
    return shape == size


def fast_guided_filter(guide_gray: np.ndarray, src: np.ndarray, radius: int = 4,
                       eps: float = 1e-3, work_long_side: int = 320, clip: bool = True) -> np.ndarray:
    """Refine ``src`` (float32 in [0,1]) along the edges of ``guide_gray``.

    ``guide_gray`` is float32 H×W in [0,1]; ``src`` is H×W or already the work copy,
    whose long side is ``work_long_side``; ``radius`` is in pixels of that copy.
    ``clip=False`` keeps the output unbounded, for a signed ``src`` such as a correction
    of a matte (the filter is linear in ``src``).
    """
    h, w = guide_gray.shape
    size = fit_long_side(w, h, work_long_side)
    i_small = cv2.resize(guide_gray, size, interpolation=cv2.INTER_AREA)
    p_small = src if _is_work_copy(src.shape, (w, h), size) else cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    box = (2 * radius + 1, 2 * radius + 1)
    mean_i = cv2.blur(i_small, box)
    mean_p = cv2.blur(p_small, box)
    cov_ip = cv2.blur(i_small * p_small, box) - mean_i * mean_p
    var_i = cv2.blur(i_small * i_small, box) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    a = cv2.resize(cv2.blur(a, box), (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(cv2.blur(b, box), (w, h), interpolation=cv2.INTER_LINEAR)
    q = cv2.multiply(a, guide_gray)
    cv2.add(q, b, dst=q)
    return np.clip(q, 0.0, 1.0, out=q) if clip else q


def fast_guided_filter_tensor(guide_gray: Tensor, src: Tensor, radius: int = 4,
                              eps: float = 1e-3, work_long_side: int = 320, clip: bool = True) -> Tensor:
    """:func:`fast_guided_filter` on the device: 1×1×H×W tensors in [0,1] (``src`` may be the work copy)
    → 1×1×H×W."""
    h, w = guide_gray.shape[-2:]
    size = fit_long_side(w, h, work_long_side)
    _is_work_copy(src.shape, (w, h), size)
    i_small = resize(guide_gray, size)
    p_small = resize(src, size)
    # The four box means in one pass, as channels: I, p, I·p, I².
    means = box_blur(torch.cat((i_small, p_small, i_small * p_small, i_small * i_small), dim=1), radius)
    mean_i, mean_p, mean_ip, mean_ii = means.split(1, dim=1)
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    a, b = resize(box_blur(torch.cat((a, b), dim=1), radius), (w, h)).split(1, dim=1)
    q = torch.addcmul(b, a, guide_gray)
    return q.clamp_(0.0, 1.0) if clip else q


# Colour guide (He et al. 2013, "Guided Image Filtering", Eq. 14–16): with the RGB guide I,
# per window k the coefficients are the 3-vector
#     a_k = (Σ_k + ε·U)⁻¹ · (mean_k(I·p) − μ_k·p̄_k),   b_k = p̄_k − a_kᵀ·μ_k,
# where μ_k and Σ_k are the mean and 3×3 covariance of I in the window and U the identity;
# the output is q_i = ā_iᵀ·I_i + b̄_i with ā, b̄ the window means of a, b. As in the grey
# filter, a and b are solved on the working copy (He & Sun 2015) and only ā, b̄ are enlarged.
# Colour separates what grey cannot: a gold flag pole and white hair, a blue sky and skin of
# the same brightness.

#: The colour-channel pairs of the six distinct entries of Σ (the box means are I (3), p, I·p (3), then these).
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _colour_coefficients(means: list, eps: float) -> list:
    """(a_r, a_g, a_b, b) from the 13 box means, each an array or tensor of one map.

    Pure arithmetic on the maps, so NumPy and torch share it; the 3×3 system is solved
    by the adjugate of the symmetric Σ + εU (its determinant is > 0 for ε > 0).
    """
    mu, mean_p, mean_ip, mean_ii = means[0:3], means[3], means[4:7], means[7:13]
    (rr, rg, rb, gg, gb, bb) = (m - mu[i] * mu[j] for m, (i, j) in zip(mean_ii, _PAIRS))
    rr, gg, bb = rr + eps, gg + eps, bb + eps
    cov_ip = [m - c * mean_p for m, c in zip(mean_ip, mu)]
    # Adjugate (cofactors) of the symmetric matrix [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]].
    c_rr, c_rg, c_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    c_gg, c_gb, c_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
    inv_det = 1 / (rr * c_rr + rg * c_rg + rb * c_rb)
    x, y, z = cov_ip
    a_r = (c_rr * x + c_rg * y + c_rb * z) * inv_det
    a_g = (c_rg * x + c_gg * y + c_gb * z) * inv_det
    a_b = (c_rb * x + c_gb * y + c_bb * z) * inv_det
    return [a_r, a_g, a_b, mean_p - a_r * mu[0] - a_g * mu[1] - a_b * mu[2]]


#: cv2's RGB→grey weights (ITU-R 601): the per-pixel dot product āᵀ·I is done as one grey
#: conversion of ā∘I, with these weights divided out of ā beforehand (one fast pass instead of three).
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def _apply_size(w: int, h: int, apply_long_side: int | None) -> tuple[int, int]:
    """Where q = āᵀ·I + b̄ is evaluated: the frame, or a copy of at most ``apply_long_side``.

    That per-pixel pass over three channels is the filter's whole cost at full resolution;
    on a copy half the frame's size it costs a quarter, and only q (one channel) is enlarged.
    """
    if apply_long_side is None or max(w, h) <= apply_long_side:
        return w, h
    return fit_long_side(w, h, apply_long_side)


def fast_guided_filter_colour(guide_rgb: np.ndarray, src: np.ndarray, radius: int = 4,
                              eps: float = 1e-3, work_long_side: int = 320,
                              apply_long_side: int | None = None,
                              scaled: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Refine ``src`` (float32 in [0,1]) along the colour edges of ``guide_rgb`` (uint8 H×W×3).

    ``src`` is H×W, or already the working copy (long side ``work_long_side``); ``radius`` is in
    pixels of that copy. ``apply_long_side``: evaluate the output on a copy of at most this long
    side and enlarge it (see :func:`_apply_size`). ``scaled(long_side)`` gives small copies of the
    guide (default: made here; the pipeline passes :meth:`Frame.scaled`, shared with other stages).
    Returns float32 H×W in [0,1].
    """
    h, w = guide_rgb.shape[:2]
    scaled = scaled or Frame(guide_rgb, 0, 0.0).scaled
    size = fit_long_side(w, h, work_long_side)
    p = src if _is_work_copy(src.shape, (w, h), size) else cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    out = _apply_size(w, h, apply_long_side)
    guide = guide_rgb if out == (w, h) else scaled(apply_long_side)
    i = scaled(work_long_side).astype(np.float32)
    i *= np.float32(1 / 255)
    channels = cv2.split(i)
    # Thirteen separate maps, each blurred on its own: contiguous small maps are several times
    # faster in OpenCV and NumPy than one interleaved 13-channel array.
    maps = [*channels, p, *(c * p for c in channels), *(channels[c] * channels[d] for c, d in _PAIRS)]
    box = (2 * radius + 1, 2 * radius + 1)
    means = [cv2.blur(m, box) for m in maps]
    coefficients = [cv2.blur(c, box) for c in _colour_coefficients(means, eps)]
    # Scaled so that the grey conversion of ā∘I (I in 0…255) is āᵀ·I.
    a = cv2.resize(cv2.merge(coefficients[:3]) / (255 * _GREY), out, interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(coefficients[3], out, interpolation=cv2.INTER_LINEAR)
    q = cv2.cvtColor(cv2.multiply(a, guide, dtype=cv2.CV_32F), cv2.COLOR_RGB2GRAY)
    cv2.add(q, b, dst=q)
    if out != (w, h):
        q = cv2.resize(q, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(q, 0.0, 1.0, out=q)


def fast_guided_filter_colour_tensor(guide: Tensor, src: Tensor, radius: int = 4, eps: float = 1e-3,
                                     work_long_side: int = 320, apply_long_side: int | None = None) -> Tensor:
    """:func:`fast_guided_filter_colour` on the device: ``guide`` 1×3×H×W and ``src`` 1×1×H×W (or the
    working copy) in [0,1] → 1×1×H×W."""
    h, w = guide.shape[-2:]
    size = fit_long_side(w, h, work_long_side)
    _is_work_copy(src.shape, (w, h), size)
    p = resize(src, size)  # a no-op on the working copy
    i = resize(guide, size)
    stack = torch.cat([i, p, i * p] + [i[:, c:c + 1] * i[:, d:d + 1] for c, d in _PAIRS], dim=1)
    means = box_blur(stack, radius).split(1, dim=1)
    out = _apply_size(w, h, apply_long_side)
    coefficients = resize(box_blur(torch.cat(_colour_coefficients(list(means), eps), dim=1), radius), out)
    a, b = coefficients.split((3, 1), dim=1)
    q = (a * (guide if out == (w, h) else resize(guide, out))).sum(1, keepdim=True).add_(b)
    return (q if out == (w, h) else resize(q, (w, h))).clamp_(0.0, 1.0)
