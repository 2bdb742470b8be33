"""Per-channel statistics of feature maps and the AdaIN re-normalisation (Huang & Belongie 2017).

Pure tensor functions shared by the normalisation-based harmonizers. Features are
N×C×H×W, masks N×1×H×W with soft weights in [0, 1]. Standard deviations are the
population ones (divide by the weight, not weight − 1) with ``eps`` inside the
square root, so a constant or empty region gives √eps, never 0 or NaN.

Xing et al. (ACM MM 2022), Eq. 2, re-normalises the foreground's decoder features
with the statistics of features of the *complete* background::

    F'_c = σ_c(s(I_bg)) · (F_c − μ_c) / σ_c + μ_c(s(I_bg))

where μ_c, σ_c are the foreground's own per-channel mean and standard deviation.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: Added to variances before the square root (and so bounds every σ below by √EPS).
EPS = 1e-5


def masked_mean_std(x: Tensor, mask: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """(μ, σ), each N×C×1×1, of ``x`` weighted by ``mask``.

    μ_c = Σ m·x_c / Σ m and σ_c = sqrt(Σ m·(x_c − μ_c)² / Σ m + eps); an all-zero mask
    gives μ = 0 and σ = √eps rather than a division by zero.
    """
    weight = mask.sum(dim=(2, 3), keepdim=True)
    safe = weight.clamp(min=1e-8)
    mean = (x * mask).sum(dim=(2, 3), keepdim=True) / safe
    var = ((x - mean) ** 2 * mask).sum(dim=(2, 3), keepdim=True) / safe
    return mean, torch.sqrt(var + eps)


def mean_std(x: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """(μ, σ), each N×C×1×1, over the whole map: μ_c = mean x_c, σ_c = sqrt(var x_c + eps)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return mean, torch.sqrt(var + eps)


def adain(x: Tensor, mask: Tensor, mean: Tensor, std: Tensor, eps: float = EPS) -> Tensor:
    """Eq. 2 inside ``mask``: the masked region of ``x`` takes the per-channel ``mean``/``std``.

    out = m · (std · (x − μ_m) / σ_m + mean) + (1 − m) · x, with (μ_m, σ_m) =
    :func:`masked_mean_std` of ``x`` over ``m``; ``mean`` and ``std`` are N×C×1×1 (or
    broadcastable), e.g. :func:`mean_std` of background features. Outside the mask ``x``
    passes unchanged.
    """
    fg_mean, fg_std = masked_mean_std(x, mask, eps)
    restyled = (x - fg_mean) / fg_std * std + mean
    return mask * restyled + (1 - mask) * x
