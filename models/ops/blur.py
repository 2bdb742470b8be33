"""Blur of the camera frame without a halo around the person.

A plain blur smears the person into the background (a halo). Weighting by
1−α and normalising — blur(F·(1−α)) / blur(1−α) — averages background pixels
only. Done on a small copy (σ a few pixels there); the result is smooth anyway.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from models.ops.tensor_image import gaussian_blur, resize

#: Below this share of background in the neighbourhood the average is meaningless.
_MIN_BACKGROUND = 0.02


#: The blur's σ as a share of the frame's width at strength 1.
SIGMA_SHARE = 0.048
#: σ in pixels of the work copy. A Gaussian this wide leaves nothing that bilinear enlargement from a copy
#: with this σ would miss (the copy's pixels are a sixth of σ apart), and the kernel stays short: at
#: strength 1 the copy is 125 pixels wide whatever the frame (a quarter-size copy at 1280×720 had σ = 15
#: pixels, a 93-pixel kernel, and cost 12 ms a frame on a 2-core CPU).
WORK_SIGMA = 6.0


def _work_size(width: int, height: int, strength: float) -> tuple[int, int]:
    """(width, height) of the work copy: small enough for σ = ``WORK_SIGMA`` there, at most a quarter of the
    frame's size."""
    scale = min(0.25, WORK_SIGMA / (SIGMA_SHARE * strength * width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _sigma(work_width: int, strength: float) -> float:
    """Gaussian σ in work-copy pixels: ``SIGMA_SHARE`` of the width at strength 1."""
    return SIGMA_SHARE * work_width * strength


def masked_blur(rgb: np.ndarray, alpha: np.ndarray, strength: float) -> np.ndarray:
    """blur(F·(1−α)) / blur(1−α) of uint8 H×W×3 ``rgb`` with float32 H×W ``alpha``, uint8 H×W×3."""
    h, w = rgb.shape[:2]
    small_size = _work_size(w, h, strength)
    # Through a quarter-size copy first: OpenCV's area resize by a whole factor is several times faster
    # than by an arbitrary one, and the quarter copy is what the arbitrary step then reads.
    quarter = (max(1, w // 4), max(1, h // 4))
    img = cv2.resize(cv2.resize(rgb, quarter, interpolation=cv2.INTER_AREA), small_size,
                     interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = 1.0 - cv2.resize(cv2.resize(alpha, quarter, interpolation=cv2.INTER_AREA), small_size,
                              interpolation=cv2.INTER_AREA)
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
    small_size = _work_size(w, h, strength)
    quarter = (max(1, w // 4), max(1, h // 4))  # the host's steps, so that the two stay alike
    img = resize(resize(image, quarter), small_size)
    weight = 1.0 - resize(resize(alpha, quarter), small_size)
    # One pass blurs numerator, denominator and the plain fallback together.
    stacked = gaussian_blur(torch.cat((img * weight, weight, img), dim=1), _sigma(small_size[0], strength))
    num, den, plain = stacked[:, :3], stacked[:, 3:4], stacked[:, 4:]
    blurred = torch.where(den > _MIN_BACKGROUND, num / den.clamp_min(1e-6), plain)
    return resize(blurred, (w, h)).clamp_(0, 1)  # after the resize: bilinear can overshoot by an ulp
