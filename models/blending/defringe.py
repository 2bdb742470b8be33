"""``defringe``: linear blending with the old background's colour taken out of the edge pixels.

Two non-learned steps before α·F + (1−α)·B:

1. **Islands**: background objects that the matting model glued to the person show up
   as separate blobs of α. Connected regions of α > 0.5 smaller than ``ISLAND_SHARE``
   of the largest one are removed (the person is the largest; hands and heads are
   joined to it or big enough to stay).
2. **Foreground colour** at the boundary, by the blur-fusion estimate of Forte & Pitié
   (2021, "Approximate Fast Foreground Colour Estimation", Eq. 4–5): with
   F̂ = blur(α·I)/blur(α) and B̂ = blur((1−α)·I)/blur(1−α),
   F = F̂ + α·(I − α·F̂ − (1−α)·B̂); run with a large then a small radius. It is
   computed on a working copy (long side ``WORK_LONG_SIDE``) and used only where
   0 < α < 1: inside the person the frame's own pixels are kept.

The CPU fall-back and the baseline a learned blend must beat.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from models.blending.base import Blend, Composite
from models.blending.linear import blend_linear, blend_linear_torch
from models.frame import Frame, on_device
from models.matting.base import Matte
from models.matting.solidify import ISLAND_SHARE, drop_islands, island_keep  # noqa: F401 (ISLAND_SHARE: re-exported)
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import alpha_array, alpha_tensor, box_blur, resize
from models.registry import register
from models.stream import StreamState

WORK_LONG_SIDE = 320
#: Radii of the two blur-fusion passes, as fractions of the working long side
#: (the paper's 90 and 6 px on ~1 MP images).
RADII = (0.09, 0.012)
_EPS = 1e-4


def _fuse(image, alpha, fg, bg, radius: int, blur):
    """One blur-fusion pass → refined (F, B); ``blur(x, radius)`` is a box filter of either kind, ``alpha``
    broadcasts against the images (H×W×1 arrays or 1×1×H×W tensors)."""
    blurred_a = blur(alpha, radius)
    f_hat = blur(fg * alpha, radius) / (blurred_a + _EPS)
    b_hat = blur(bg * (1 - alpha), radius) / (1 - blurred_a + _EPS)
    residual = image - alpha * f_hat - (1 - alpha) * b_hat
    return (f_hat + alpha * residual).clip(0, 1), (b_hat + (1 - alpha) * residual).clip(0, 1)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    out = cv2.blur(x, (2 * radius + 1, 2 * radius + 1))
    return out[..., None] if x.ndim == 3 and out.ndim == 2 else out


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person's own colour (uint8 H×W×3): blur-fusion at the boundary, the frame elsewhere."""
    h, w = alpha.shape
    size = fit_long_side(w, h, WORK_LONG_SIDE)
    image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    a = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)[..., None]
    fg = bg = image
    for r in RADII:
        fg, bg = _fuse(image, a, fg, bg, max(1, round(r * max(size))), _box)
    # uint8 from here on: the full-resolution work is one resize and one masked copy.
    fg = cv2.resize(np.clip(fg * 255 + 0.5, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    edge = ((alpha > 0) & (alpha < 1)).view(np.uint8)
    # cv2.copyTo with a one-channel mask: NumPy's copyto with a broadcast mask is ~20× slower here.
    return cv2.copyTo(fg, edge, rgb.copy())


@register("blend", "defringe", "linear blending without the old background's colour on the edges, "
          "stray matte islands removed (Forte & Pitié 2021)")
class DefringeBlend(Blend):
    """Islands removed, edge colours estimated, then α·F + (1−α)·B."""

    def blend(self, frame: Frame, matte: Matte, background, state: StreamState) -> Composite:
        if on_device(matte.alpha):
            return self._blend_tensor(frame, matte, background)
        alpha = drop_islands(matte.alpha)
        fg = matte.foreground if matte.foreground is not None else estimate_foreground(frame.rgb, alpha)
        return Composite(blend_linear(fg, alpha, background), alpha, fg)

    def _blend_tensor(self, frame: Frame, matte: Matte, background: torch.Tensor) -> Composite:
        alpha = matte.alpha
        h, w = alpha.shape[-2:]
        # Connected components have no device kernel: a thumbnail of the matte goes to the host
        # (a few kilobytes; the frame itself stays on the device).
        keep = island_keep(alpha_array(resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE))))
        if keep is not None:
            alpha = alpha * resize(alpha_tensor(keep, alpha.device), (w, h))
        fg = matte.foreground if matte.foreground is not None else estimate_foreground_tensor(frame.pixels, alpha)
        return Composite(blend_linear_torch(fg, alpha, background), alpha, fg)


def estimate_foreground_tensor(image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """:func:`estimate_foreground` on the device (1×3×H×W and 1×1×H×W in [0,1])."""
    h, w = alpha.shape[-2:]
    size = fit_long_side(w, h, WORK_LONG_SIDE)
    small, a = resize(image, size), resize(alpha, size)
    fg = bg = small
    for r in RADII:
        fg, bg = _fuse(small, a, fg, bg, max(1, round(r * max(size))), box_blur)
    edge = ((alpha > 0) & (alpha < 1)).to(image.dtype)
    return torch.lerp(image, resize(fg, (w, h)), edge)
