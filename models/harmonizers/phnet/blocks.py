"""The building blocks of PHNet (Efremyan et al., "PHNet: Patch-based Normalization for Portrait
Harmonization", 2024): patch grids, the PN block (§4.1), the PFE (§4.2) and the SE bottleneck (§4.3).

Everything follows the authors' public code, which the official checkpoints were trained
with, where it differs from the paper:

* PN (Eqs. 2–12): the statistics are *masked* (the paper multiplies by the mask and then
  counts every pixel). Of the local statistics only the background patch means are used,
  aggregated with a learned C×g×g weight (Eq. 6); there is no local deviation (Eq. 7), so
  the patch branch rescales with the global background deviation. Both foreground branches
  have their own per-channel affine, and the background is re-normalised by its own global
  statistics plus an affine (instead of Eq. 11).
* PFE: the colour transfer uses *unmasked* statistics of the zero-filled foreground and
  background images, with torch's unbiased deviation; per patch ``w0·local + w1·global``.
  Its image reaches the network only as one scalar per image (see :class:`SqueezeExcitation`).

A g×g grid splits a side of length n into patches of ⌊n/g⌋ and gives the remainder to the
last patch (when n < g, every patch but the last is empty). Patch statistics are computed
with one-hot row/column assignment matrices — sums are two matrix products — so the forward
pass has no Python loop over patches and exports to ONNX as plain MatMul/Gather.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Added to mask weights and inside the square root by the PN block (official value).
PN_EPS = 1e-7
#: Added to the foreground deviation by the PFE colour transfer (official value).
PFE_EPS = 1e-8


def patch_index(size: int, grid: int, device: torch.device | None = None) -> Tensor:
    """The patch (0…grid−1) of each of ``size`` rows: ⌊i/⌊size/grid⌋⌋, the remainder in the last."""
    step = size // grid
    index = torch.arange(size, device=device)
    if step == 0:  # more patches than rows: only the last patch is not empty
        return torch.full_like(index, grid - 1)
    return torch.clamp(index // step, max=grid - 1)


def patch_sums(x: Tensor, grid: int) -> Tensor:
    """Sum of ``x`` (N×C×H×W) over each patch of a grid×grid split: N×C×grid×grid."""
    h, w = x.shape[-2:]
    rows = F.one_hot(patch_index(h, grid, x.device), grid).to(x.dtype)  # H×g
    cols = F.one_hot(patch_index(w, grid, x.device), grid).to(x.dtype)  # W×g
    return rows.T @ x @ cols


def to_pixels(stats: Tensor, size: tuple[int, int]) -> Tensor:
    """Per-patch ``stats`` (N×C×g×g) spread back over an H×W map: each pixel takes its patch's value.

    A gather rather than a product with the one-hot matrices, so that the NaN statistics of an
    empty (or one-pixel) patch stay in that patch.
    """
    grid = stats.shape[-1]
    rows = patch_index(size[0], grid, stats.device)
    cols = patch_index(size[1], grid, stats.device)
    return stats.index_select(2, rows).index_select(3, cols)


def masked_mean_std(x: Tensor, mask: Tensor, eps: float = PN_EPS) -> tuple[Tensor, Tensor]:
    """The PN block's per-channel (μ, σ), each N×C×1×1, of ``x`` weighted by ``mask`` (N×1×H×W).

    μ = Σ m·x / (Σ m + eps), σ = sqrt(Σ (m·(x − μ))² / (Σ m + eps) + eps). The official
    definition squares the weighted deviation (m², not m) and adds ``eps`` to the weight, so
    :func:`models.ops.feature_stats.masked_mean_std` cannot stand in for it.
    """
    weight = mask.sum(dim=(2, 3), keepdim=True) + eps
    mean = (x * mask).sum(dim=(2, 3), keepdim=True) / weight
    var = ((x - mean) * mask).square().sum(dim=(2, 3), keepdim=True) / weight
    return mean, torch.sqrt(var + eps)


def _affine(channels: int, value: float) -> nn.Parameter:
    return nn.Parameter(torch.full((1, channels, 1, 1), value))


class PatchNormalization(nn.Module):
    """The PN block (§4.1) on a decoder skip feature ``f`` (N×C×h×w) with the mask at its scale.

    With m̄ = 1 − m, masked statistics (μ_B, σ_B) over m̄ and (μ_F, σ_F) over m, and
    μ̃_B = Σ_pq W[c,p,q]·μ_B^pq (masked background mean of each patch, Eq. 6)::

        f̂ = (f − μ_F) / σ_F
        F = w0·(γ_F·(σ_B·f̂ + μ_B) + β_F) + w1·(γ_P·(σ_B·f̂ + μ̃_B) + β_P)      (Eqs. 5, 8, 10)
        B = γ_B·(f − μ_B) / σ_B + β_B
        out = m·F + m̄·B                                                         (Eq. 12)

    Parameter names are the official ones: ``weights`` = (w0, w1); ``fg_var``/``fg_bias`` =
    γ_F/β_F, ``patched_fg_*`` = γ_P/β_P, ``bg_*`` = γ_B/β_B; ``grid_weights`` = W.
    """

    def __init__(self, channels: int, grid: int, branch_weights: tuple[float, float] = (0.5, 0.5),
                 gain: float = 0.8) -> None:
        super().__init__()
        self.grid = grid
        self.weights = nn.Parameter(torch.tensor(branch_weights, dtype=torch.float32))
        self.fg_var, self.fg_bias = _affine(channels, gain), _affine(channels, 0.0)
        self.patched_fg_var, self.patched_fg_bias = _affine(channels, gain), _affine(channels, 0.0)
        self.bg_var, self.bg_bias = _affine(channels, gain), _affine(channels, 0.0)
        # Starts as a plain average of the patch means over patches and channels (official init).
        self.grid_weights = nn.Parameter(torch.full((1, channels, grid, grid), 1.0 / (grid * grid * channels)))

    def forward(self, f: Tensor, mask: Tensor) -> Tensor:
        background = 1 - mask
        bg_mean, bg_std = masked_mean_std(f, background)
        fg_mean, fg_std = masked_mean_std(f, mask)
        patch_bg_means = patch_sums(f * background, self.grid) / (patch_sums(background, self.grid) + PN_EPS)
        bg_patch_mean = (patch_bg_means * self.grid_weights).sum(dim=(2, 3), keepdim=True)

        rescaled = (f - fg_mean) / fg_std * bg_std
        fg_global = (rescaled + bg_mean) * self.fg_var + self.fg_bias
        fg_patch = (rescaled + bg_patch_mean) * self.patched_fg_var + self.patched_fg_bias
        fg = self.weights[0] * fg_global + self.weights[1] * fg_patch
        bg = (f - bg_mean) / bg_std * self.bg_var + self.bg_bias
        return fg * mask + bg * background


def _mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    # The PFE's statistics: plain (unmasked) mean and unbiased deviation, no epsilon.
    return x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True).sqrt()


def _patch_mean_std(x: Tensor, grid: int) -> tuple[Tensor, Tensor]:
    """Per-pixel (μ, σ) of the patch each pixel lies in; σ unbiased as in :func:`_mean_std`."""
    size = x.shape[-2:]
    count = patch_sums(torch.ones_like(x[:1, :1]), grid)  # 1×1×g×g pixels per patch
    mean = to_pixels(patch_sums(x, grid) / count, size)
    var = patch_sums((x - mean).square(), grid) / (count - 1)
    return mean, to_pixels(var.sqrt(), size)


class PatchColourTransfer(nn.Module):
    """The PFE's statistical colour transfer (§4.2) of ``fg`` = I·m towards ``bg`` = I·(1−m).

    Inside each patch (p, q) of a grid×grid split, with unmasked statistics::

        local  = (fg − μ_F^pq) · σ_B^pq / (σ_F^pq + 1e-8) + μ_B^pq
        global = (fg − μ_F) · σ_B / (σ_F + 1e-8) + μ_B
        H = w0·local + w1·global,    (w0, w1) = ``grid_weights``, initialised to (0.9, 0.1)

    Returns m·H + (1 − m)·bg/255: the official code composites H over the background scaled
    by 1/255 (a leftover of 8-bit inputs) and the checkpoints were trained with it.
    """

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.grid_weights = nn.Parameter(torch.tensor([0.9, 0.1]))

    def forward(self, fg: Tensor, bg: Tensor, mask: Tensor) -> Tensor:
        fg_mean, fg_std = _mean_std(fg)
        bg_mean, bg_std = _mean_std(bg)
        fg_local_mean, fg_local_std = _patch_mean_std(fg, self.grid)
        bg_local_mean, bg_local_std = _patch_mean_std(bg, self.grid)
        local = (fg - fg_local_mean) * (bg_local_std / (fg_local_std + PFE_EPS)) + bg_local_mean
        global_ = (fg - fg_mean) * (bg_std / (fg_std + PFE_EPS)) + bg_mean
        harmonized = self.grid_weights[0] * local + self.grid_weights[1] * global_
        return harmonized * mask + bg / 255 * (1 - mask)


class PatchFeatureExtractor(nn.Module):
    """PFE (§4.2): ReLU(Conv3×3([I·m, colour transfer])), a 3-channel map at full resolution."""

    def __init__(self, grid: int, channels: int = 3) -> None:
        super().__init__()
        self.patch_harmonizer = PatchColourTransfer(grid)
        self.head = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, padding=1), nn.ReLU())

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        fg, bg = image * mask, image * (1 - mask)
        return self.head(torch.cat((fg, self.patch_harmonizer(fg, bg, mask)), dim=1))


class SqueezeExcitation(nn.Module):
    """The bottleneck SE block (§4.3) with the PFE's auxiliary weight.

    ``z = x·σ(W2·ReLU(W1·avgpool(x))) + s·x`` with ``s = σ(mean_c(max_xy(pfe)))``, one scalar
    per image: in the official code the paper's pooled vector q2 collapses to this scalar.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: Tensor, pfe: Tensor) -> Tensor:
        channel_weights = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]
        aux = torch.sigmoid(pfe.amax(dim=(2, 3), keepdim=True).mean(dim=1, keepdim=True))
        return x * channel_weights + x * aux


class Confidence(nn.Module):
    """How much of its correction the network applies: one share in (0, 1) per image (ours, not the paper's).

    PN re-normalises the person's features to the background's statistics, so the decoder has to rebuild a
    person who already fits from what survives of their colours, and a harmonious input comes back changed.
    This head judges from colour statistics whether the correction is needed: the per-channel mean and
    deviation of the input and of the network's output in a thin band just inside the mask's edge, of the
    input in the band just outside it, and of both over the whole person and the input's background. A person
    pushed out of harmony shows a step at the edge that the correction closes; a harmonious one shows none
    that the correction would close. The output is moved from the input towards the prediction by that share,
    so "change nothing" is one number away rather than a whole image to rebuild.
    """

    #: Half the width of the edge bands, in pixels of the network's input.
    BAND = 3
    #: Colour statistics the head reads (6 regions × mean and deviation × RGB).
    FEATURES = 36

    def __init__(self, hidden: int = 32, initial: float = 0.9) -> None:
        super().__init__()
        # The statistics differ in scale by an order of magnitude (means near 0.5, deviations near 0.05):
        # standardised by their running batch statistics, as in training, so the head learns all of them.
        self.standardise = nn.BatchNorm1d(self.FEATURES, affine=False)
        self.fc = nn.Sequential(nn.Linear(self.FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        # Starts near "apply it all", so a network trained without the head behaves almost as before.
        nn.init.zeros_(self.fc[2].weight)
        nn.init.constant_(self.fc[2].bias, math.log(initial / (1 - initial)))

    def statistics(self, composite: Tensor, out: Tensor, mask: Tensor) -> Tensor:
        """What the head reads: N×36 colour statistics of ``composite`` and the network's ``out`` (N×3×H×W) for a
        binary ``mask`` (N×1×H×W)."""
        k = 2 * self.BAND + 1
        grown = F.max_pool2d(mask, k, stride=1, padding=self.BAND)
        shrunk = 1 - F.max_pool2d(1 - mask, k, stride=1, padding=self.BAND)
        inner, outer = mask - shrunk, grown - mask
        regions = ((composite, inner), (out, inner), (composite, outer), (composite, mask), (out, mask),
                   (composite, 1 - mask))
        return torch.cat([s for image, region in regions for s in masked_mean_std(image, region)], dim=1).flatten(1)

    def share(self, statistics: Tensor) -> Tensor:
        """The share (N×1) for :meth:`statistics`."""
        return torch.sigmoid(self.fc(self.standardise(statistics)))

    def forward(self, composite: Tensor, out: Tensor, mask: Tensor) -> Tensor:
        """``composite`` and the network's ``out`` N×3×H×W, binary ``mask`` N×1×H×W → N×1×1×1 share."""
        return self.share(self.statistics(composite, out, mask))[:, :, None, None]


class SkipFusion(nn.Module):
    """A decoder step's fusion of [x, skip]: ReLU(Conv3×3(2C → C, no bias)) (official ``SkipConnect``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rconv = nn.Conv2d(2 * channels, channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return F.relu(self.rconv(torch.cat((x, skip), dim=1)))
