"""Classic colour transfer: Reinhard et al. (2001) mean/std matching in CIE Lab.

A training-free harmonization baseline: the foreground's per-channel Lab mean and
standard deviation are moved to those of a reference region (the visible
background) or of a reference image (the complete background).
"""
from __future__ import annotations

import cv2
import numpy as np

_EPS = 1e-6


def to_lab(rgb: np.ndarray) -> np.ndarray:
    # float32 in [0,1] gives L in [0,100] and a, b around [-127, 127] without 8-bit rounding.
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def lab_stats(lab: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted per-channel mean and standard deviation of an H×W×3 Lab image."""
    w = np.ones(lab.shape[:2], np.float64) if weights is None else weights.astype(np.float64)
    total = w.sum()
    if total <= _EPS:
        raise ValueError("the region for colour statistics is empty")
    flat = lab.reshape(-1, 3).astype(np.float64)
    w = w.reshape(-1, 1)
    mean = (flat * w).sum(0) / total
    std = np.sqrt(((flat - mean) ** 2 * w).sum(0) / total)
    return mean, std


def reinhard_lab(image: np.ndarray, mask: np.ndarray,
                 reference: np.ndarray | tuple[np.ndarray, np.ndarray], strength: float = 1.0) -> np.ndarray:
    """Recolour the foreground of ``image`` towards a reference, Reinhard-style, in Lab.

    ``image``: H×W×3 RGB, uint8 or float in [0,1] (the result has the same dtype).
    ``mask``: H×W soft foreground in [0,1]; it weights the foreground statistics and
    blends the result, so the background is untouched.
    ``reference``: H×W weights over ``image`` (e.g. ``1 − mask``, the visible
    background), an RGB image of any size (e.g. the complete background), whose
    whole-image statistics are the target, or those statistics already computed
    (``lab_stats`` of it: callers cache them per background). ``strength`` in [0,1] scales the effect.
    """
    is_uint8 = image.dtype == np.uint8
    rgb = image.astype(np.float32) / 255.0 if is_uint8 else image.astype(np.float32)
    lab = to_lab(rgb)
    mask = mask.astype(np.float32)
    if isinstance(reference, tuple):
        ref_mean, ref_std = reference
    elif reference.ndim == 2:
        ref_mean, ref_std = lab_stats(lab, reference)
    else:
        ref = reference.astype(np.float32) / 255.0 if reference.dtype == np.uint8 else reference.astype(np.float32)
        ref_mean, ref_std = lab_stats(to_lab(ref))
    fg_mean, fg_std = lab_stats(lab, mask)
    moved = (lab - fg_mean) * (ref_std / np.maximum(fg_std, _EPS)) + ref_mean
    out = cv2.cvtColor(moved.astype(np.float32), cv2.COLOR_LAB2RGB).clip(0, 1)
    alpha = (mask * strength)[..., None]
    out = out * alpha + rgb * (1 - alpha)
    return np.round(out * 255).astype(np.uint8) if is_uint8 else out
