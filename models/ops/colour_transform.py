"""A 3×4 affine colour map: fitted between a small image pair, applied to a full frame.

``y = A·x + b`` per pixel, x and y RGB in [0,1]. It is the compact transform an
image-to-image harmonizer's output is turned into, so the harmonization of a
256² copy can be smoothed over time and applied at any resolution. As a vector
it is the 3×4 matrix ``[A | b]`` in row order (12 numbers).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from models.frame import Image, on_device
from models.ops.tensor_image import to_device

#: Ridge weight (per unit of mask weight) that pulls the fit towards the identity where the
#: foreground's colours do not determine it (e.g. a uniformly coloured shirt fixes no cross terms).
RIDGE = 1e-3


def identity_affine() -> np.ndarray:
    return np.eye(3, 4, dtype=np.float32).reshape(12)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The map ``outer ∘ inner`` (``inner`` first) as one ``[A | b]``: A = A_o·A_i, b = A_o·b_i + b_o.

    Equal to applying the two maps one after the other wherever ``inner`` stays inside [0,1].
    """
    o, i = np.asarray(outer, np.float64).reshape(3, 4), np.asarray(inner, np.float64).reshape(3, 4)
    return np.hstack([o[:, :3] @ i[:, :3], o[:, :3] @ i[:, 3:] + o[:, 3:]]).reshape(12).astype(np.float32)


def pixel_rows(image: Image) -> torch.Tensor:
    """N×3 float64 pixels in [0,1] from uint8 H×W×3, float H×W×3 or a 1×3×H×W tensor."""
    if on_device(image):
        return image[0].reshape(3, -1).T.double()
    t = torch.from_numpy(np.ascontiguousarray(image)).reshape(-1, 3).double()
    return t / 255 if image.dtype == np.uint8 else t


def pixel_weights(mask: Image) -> torch.Tensor:
    """N float64 weights from a soft mask (float H×W or a 1×1×H×W tensor), in the order of :func:`pixel_rows`."""
    w = mask.reshape(-1) if on_device(mask) else torch.from_numpy(np.ascontiguousarray(mask)).reshape(-1)
    return w.double()


def fit_colour_affine(source: Image, target: Image, mask: Image, ridge: float = RIDGE) -> np.ndarray:
    """The map ``[A | b]`` that minimises Σ m·‖A·x + b − y‖² + ridge·Σm·‖[A | b] − [I | 0]‖².

    ``source`` and ``target`` are the same picture before and after harmonization, ``mask``
    the soft foreground that weights each pixel; solved in closed form (4×4 normal equations).
    """
    x, y = pixel_rows(source), pixel_rows(target)
    w = pixel_weights(mask).to(x.device)
    total = w.sum()
    x1 = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)           # N×4
    prior = torch.eye(4, 3, dtype=torch.float64, device=x.device)   # X·prior = x
    lam = ridge * total + 1e-9                                      # never singular, even for an empty mask
    lhs = (x1 * w[:, None]).T @ x1 + lam * torch.eye(4, dtype=torch.float64, device=x.device)
    rhs = (x1 * w[:, None]).T @ y + lam * prior
    m = torch.linalg.solve(lhs, rhs)                                # 4×3, y = x1·m
    return m.T.reshape(12).float().cpu().numpy()


def apply_colour_affine(image: Image, alpha: Image, transform: np.ndarray) -> Image:
    """``image`` mapped by ``transform`` inside ``alpha`` (blended by it), unchanged where α = 0.

    Host: uint8 H×W×3 with float32 H×W alpha, worked only in the box of α > 0.
    Device: float 1×3×H×W with 1×1×H×W alpha.
    """
    m = np.array(transform, np.float32).reshape(3, 4)  # a copy: the offset is rescaled below
    if on_device(image):
        mt = to_device(m, image.device, image.dtype)
        mapped = torch.einsum("ij,njhw->nihw", mt[:, :3], image) + mt[:, 3].view(1, 3, 1, 1)
        return torch.lerp(image, mapped.clamp_(0, 1), alpha)
    out = image.copy()
    x, y, w, h = cv2.boundingRect((alpha > 0).view(np.uint8))
    if w == 0:
        return out
    box = (slice(y, y + h), slice(x, x + w))
    roi, a = image[box], np.ascontiguousarray(alpha[box], dtype=np.float32)
    m[:, 3] *= 255  # the offset in uint8 units; cv2.transform rounds and saturates
    mapped = cv2.transform(roi, m)
    out[box] = cv2.blendLinear(mapped, roi, a, 1.0 - a)
    return out
