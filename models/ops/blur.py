"""Blur of the camera frame without a halo around the person.

A plain blur smears the person into the background (a halo). Weighting by
1−α and normalising — blur(F·(1−α)) / blur(1−α) — averages background pixels
only. Done on a quarter-size copy; the result is smooth anyway.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from models.ops.tensor_image import gaussian_blur, resize

#: Below this share of background in the neighbourhood the average is meaningless.
_MIN_BACKGROUND = 0.02


def _work_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the quarter-size work copy."""
    return max(1, width // 4), max(1, height // 4)


def _sigma(work_width: int, strength: float) -> float:
    """Gaussian σ in work-copy pixels: 4.8 % of the full frame width at strength 1."""
    return 0.012 * work_width * strength * 4


def masked_blur(rgb: np.ndarray, alpha: np.ndarray, strength: float) -> np.ndarray:
    """blur(F·(1−α)) / blur(1−α) of uint8 H×W×3 ``rgb`` with float32 H×W ``alpha``, uint8 H×W×3."""
    h, w = rgb.shape[:2]
    small_size = _work_size(w, h)
    img = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = 1.0 - cv2.resize(alpha, small_size, interpolation=cv2.INTER_AREA)
    sigma = _sigma(small_size[0], strength)
    num = cv2.GaussianBlur(img * weight[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    plain = cv2.GaussianBlur(img, (0, 0), sigma)
    # Where the person covers the whole neighbourhood there is no background to average.
    blurred = np.where(den > _MIN_BACKGROUND, num / np.maximum(den, 1e-6), plain)
    small = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def masked_blur_tensor(image: Tensor, alpha: Tensor, strength: float) -> Tensor:
    """:func:`masked_blur` on the device: ``image`` 1×3×H×W in [0,1], ``alpha`` 1×1×H×W → 1×3×H×W in [0,1]."""
    h, w = image.shape[-2:]
    small_size = _work_size(w, h)
    img = resize(image, small_size)
    weight = 1.0 - resize(alpha, small_size)
    # One pass blurs numerator, denominator and the plain fallback together.
    stacked = gaussian_blur(torch.cat((img * weight, weight, img), dim=1), _sigma(small_size[0], strength))
    num, den, plain = stacked[:, :3], stacked[:, 3:4], stacked[:, 4:]
    blurred = torch.where(den > _MIN_BACKGROUND, num / den.clamp_min(1e-6), plain)
    return resize(blurred, (w, h)).clamp_(0, 1)  # after the resize: bilinear can overshoot by an ulp
