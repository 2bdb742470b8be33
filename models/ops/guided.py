"""Fast guided filter (He & Sun 2015): edge-aware refinement of a soft matte.

The linear coefficients ``a, b`` of ``q = a·I + b`` are solved on a small copy
and upsampled, so full-resolution work is two resizes and one multiply-add.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from models.ops.sizes import fit_long_side
from models.ops.tensor_image import box_blur, resize


def fast_guided_filter(guide_gray: np.ndarray, src: np.ndarray, radius: int = 4,
                       eps: float = 1e-3, work_long_side: int = 320) -> np.ndarray:
    """Refine ``src`` (float32 H×W in [0,1]) along the edges of ``guide_gray``.

    ``guide_gray`` is float32 H×W in [0,1]; ``radius`` is in pixels of the work
    copy whose long side is ``work_long_side``.
    """
    h, w = src.shape
    size = fit_long_side(w, h, work_long_side)
    i_small = cv2.resize(guide_gray, size, interpolation=cv2.INTER_AREA)
    p_small = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
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
    return np.clip(q, 0.0, 1.0, out=q)


def fast_guided_filter_tensor(guide_gray: Tensor, src: Tensor, radius: int = 4,
                              eps: float = 1e-3, work_long_side: int = 320) -> Tensor:
    """:func:`fast_guided_filter` on the device: 1×1×H×W tensors in [0,1] → 1×1×H×W."""
    h, w = src.shape[-2:]
    size = fit_long_side(w, h, work_long_side)
    i_small = resize(guide_gray, size)
    p_small = resize(src, size)
    # The four box means in one pass, as channels: I, p, I·p, I².
    means = box_blur(torch.cat((i_small, p_small, i_small * p_small, i_small * i_small), dim=1), radius)
    mean_i, mean_p, mean_ip, mean_ii = means.split(1, dim=1)
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    a, b = resize(box_blur(torch.cat((a, b), dim=1), radius), (w, h)).split(1, dim=1)
    return torch.addcmul(b, a, guide_gray).clamp_(0.0, 1.0)
