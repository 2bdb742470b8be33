"""The boundary band of a matte, and the blending loss of Xing et al. (ACM MM 2022, Eq. 1).

The band is the unknown region of a trimap made by erosion and dilation of the true
matte (the paper's evaluation protocol, after MODNet): pixels within ``radius`` of
the outline α = 0.5. Its default half-width is 1.2 % of the long side — 15 px at
1280×720, the band the issue's first measurement used.

L_blend = ‖I − T‖₁ + λ·‖m_d ⊙ (I − T)‖₁, the second term averaged over the band only,
so the thin outline is not drowned by the many interior and background pixels.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch.nn.functional as F
from torch import Tensor

BAND_SHARE = 0.012


def band_radius(width: int, height: int) -> int:
    return max(1, round(BAND_SHARE * max(width, height)))


def boundary_band(alpha: np.ndarray, radius: int | None = None) -> np.ndarray:
    """bool H×W: dilate(α > 0.5, r) and not erode(α > 0.5, r) (elliptic structuring element)."""
    h, w = alpha.shape
    r = radius or band_radius(w, h)
    core = (alpha > 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return (cv2.dilate(core, kernel) > 0) & ~(cv2.erode(core, kernel) > 0)


def boundary_band_tensor(alpha: Tensor, radius: int) -> Tensor:
    """N×1×H×W float band of a batch of mattes (square structuring element, for training)."""
    core = (alpha > 0.5).float()
    k = 2 * radius + 1
    dilated = F.max_pool2d(core, k, 1, radius)
    eroded = -F.max_pool2d(-core, k, 1, radius)
    return dilated - eroded


def blend_loss(output: Tensor, target: Tensor, band: Tensor, band_weight: float = 1.0) -> Tensor:
    """Eq. 1: mean |output − target| plus ``band_weight`` × its mean over the band (per batch)."""
    error = (output - target).abs()
    in_band = (error * band).sum() / (band.sum() * output.shape[1]).clamp(min=1)
    return error.mean() + band_weight * in_band
