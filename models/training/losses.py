"""The cascade loss of Harmonizer (§3.3) as the official training code computes it.

Each forward filter step *i* has a loss L_i: ``sqrt((p−t)² + 1e-6) + 10·(p−t)²``
averaged over the (soft) foreground mask. The dynamic loss strategy then keeps,
for every step after the first, only the part of L_i above the (detached) L_{i−1},
i.e. the error that step *adds*, and divides everything by a detached per-sample
normaliser: L_0 plus all positive step-to-step increases. The paper's Eq. 12
divides by L_k instead; we follow the code, whose normaliser is the sum of the
terms it scales, so the per-sample total is at most about 1.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_SQRT_EPS = 1e-6
_L2_WEIGHT = 10.0
_MASK_EPS = 1e-6
_NORM_EPS = 1e-9


def masked_step_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-sample loss (N,) of one step: mean over masked pixels and channels."""
    diff2 = (pred - target) ** 2
    per_pixel = torch.sqrt(diff2 + _SQRT_EPS) + _L2_WEIGHT * diff2
    weight = mask.expand_as(per_pixel)
    return (per_pixel * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) + _MASK_EPS)


def dynamic_loss(step_losses: Sequence[Tensor], norm_floor: float = 0.0) -> Tensor:
    """Scalar training loss from per-sample step losses (each (N,), forward filter order).

    ``norm_floor`` bounds the per-sample normaliser from below. A harmonious ("identity")
    sample has L_0 ≈ 0.001 (the √ε of the loss), so without a floor its terms are scaled up
    about a hundredfold and the batch learns little else than predicting zero everywhere.
    """
    detached = [l.detach() for l in step_losses]
    norm = detached[0] + _NORM_EPS
    for prev, cur in zip(detached, detached[1:]):
        norm = norm + (cur - prev).clamp(min=0)
    norm = norm.clamp(min=norm_floor)
    total = (step_losses[0] / norm).mean()
    for prev, cur in zip(detached, step_losses[1:]):
        total = total + ((cur - prev) / norm).clamp(min=0).mean()
    return total


def cascade_loss(outputs: Sequence[Tensor], targets: Sequence[Tensor], mask: Tensor,
                 norm_floor: float = 0.0) -> tuple[Tensor, Tensor]:
    """(dynamic training loss, per-step mean losses (k,) for logging)."""
    steps = [masked_step_loss(o, t, mask) for o, t in zip(outputs, targets, strict=True)]
    return dynamic_loss(steps, norm_floor), torch.stack([s.detach().mean() for s in steps])
