"""HPBNet's training-pair synthesis (Wang et al., CGF 2023, §3.1, Fig. 2).

A real photo is its own harmonious target; its portrait is pushed out of harmony
with the background in three steps:

1. **white-balance jitter** of the whole photo (foreground and background alike, so
   the target changes too): gamma 2.2 to linear light, multiplication by a random
   diagonal 3×3 matrix with entries in [0.75, 1.3], back to gamma (§3.1);
2. **colour transfer** of the portrait from a reference portrait in Lab: the
   portrait's per-channel Lab mean and standard deviation are moved to those of the
   reference's portrait (Reinhard et al. 2001, :func:`~models.ops.colour_transfer.reinhard_lab`).
   The reference is another photo of the same batch, with its own mask;
3. **a lighting perturbation** in place of the paper's portrait-relighting network
   (Zhou et al. 2019, whose weights are not available here): in linear light the
   portrait is multiplied by a smooth directional shading — a ramp along a random
   image-plane direction through the portrait's centre, of random strength — times a
   random exposure and a slightly tinted light colour. It changes the portrait's
   illumination without changing its content, which is what the relighting step
   contributes to the training set.

Only the portrait changes in steps 2–3; the background is the jittered photo's.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from models.ops.colour_transfer import lab_stats, reinhard_lab, to_lab

GAMMA = 2.2
WHITE_BALANCE = (0.75, 1.3)
SHADING = (0.0, 0.8)      # strength of the directional ramp (gain 1 ± this at the portrait's edge)
EXPOSURE = (0.7, 1.3)
LIGHT_TINT = 0.1          # the light colour's per-channel deviation from white
_MIN_AREA = 1.0           # pixels of mask weight below which a region has no colour statistics


def white_balance_jitter(image: Tensor, gains: Tensor) -> Tensor:
    """``image`` (N×3×H×W in [0, 1]) under another white balance: per-channel ``gains`` (N×3) in linear light."""
    linear = image.clamp(0, 1) ** GAMMA * gains[:, :, None, None]
    return linear.clamp(0, 1) ** (1 / GAMMA)


def lab_transfer(image: Tensor, mask: Tensor, reference: Tensor, reference_mask: Tensor) -> Tensor:
    """The portrait of each ``image`` recoloured in Lab towards the portrait of its ``reference`` (all N×C×H×W).

    A sample whose mask or reference mask is (nearly) empty is returned unchanged.
    """
    out = image.clone()
    for n in range(image.shape[0]):
        m, rm = mask[n, 0].numpy(), reference_mask[n, 0].numpy()
        if m.sum() < _MIN_AREA or rm.sum() < _MIN_AREA:
            continue
        ref = np.ascontiguousarray(reference[n].permute(1, 2, 0).numpy())
        rgb = np.ascontiguousarray(image[n].permute(1, 2, 0).numpy())
        moved = reinhard_lab(rgb, m, lab_stats(to_lab(ref), rm))
        out[n] = torch.from_numpy(moved).permute(2, 0, 1)
    return out


def directional_shading(mask: Tensor, direction: Tensor, strength: Tensor) -> Tensor:
    """N×1×H×W gain 1 + strength·t, t the position along ``direction`` (N×2, unit x/y) relative to the
    portrait's centre, scaled so the portrait's extent along it spans about [−1, 1] (then clamped there)."""
    n, _, h, w = mask.shape
    ys = torch.linspace(-1, 1, h).view(1, h, 1).expand(n, h, w)
    xs = torch.linspace(-1, 1, w).view(1, 1, w).expand(n, h, w)
    along = xs * direction[:, 0, None, None] + ys * direction[:, 1, None, None]
    weight = mask[:, 0]
    total = weight.sum((1, 2)).clamp(min=1e-6)
    centre = (along * weight).sum((1, 2)) / total
    spread = (((along - centre[:, None, None]) ** 2 * weight).sum((1, 2)) / total).sqrt().clamp(min=1e-3)
    t = ((along - centre[:, None, None]) / (2 * spread[:, None, None])).clamp(-1, 1)
    return (1 + strength[:, None, None] * t)[:, None]


def relight(image: Tensor, mask: Tensor, gain: Tensor) -> Tensor:
    """``image`` with its masked region multiplied by ``gain`` (N×C×H×W or broadcastable) in linear light."""
    lit = (image.clamp(0, 1) ** GAMMA * gain).clamp(0, 1) ** (1 / GAMMA)
    return mask * lit + (1 - mask) * image


def portrait_pairs(real: Tensor, mask: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """(inharmonious composite, target) for a batch of real photos (N×3×H×W, masks N×1×H×W, in [0, 1]).

    The reference of sample i is sample i+1 of the batch (a batch of one is its own reference,
    so only the white balance and the lighting change).
    """
    n = real.shape[0]
    f32 = np.float32
    target = white_balance_jitter(real, torch.from_numpy(rng.uniform(*WHITE_BALANCE, (n, 3)).astype(f32)))
    moved = lab_transfer(target, mask, target.roll(1, 0), mask.roll(1, 0))
    angle = rng.uniform(0, 2 * np.pi, n)
    direction = torch.from_numpy(np.stack([np.cos(angle), np.sin(angle)], 1).astype(f32))
    shading = directional_shading(mask, direction, torch.from_numpy(rng.uniform(*SHADING, n).astype(f32)))
    light = rng.uniform(*EXPOSURE, (n, 1)) * rng.uniform(1 - LIGHT_TINT, 1 + LIGHT_TINT, (n, 3))
    gain = shading * torch.from_numpy(light.astype(f32))[:, :, None, None]
    return relight(moved, mask, gain), target
