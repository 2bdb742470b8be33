"""The complete-background AdaIN harmonization network (Xing et al., ACM MM 2022, §4.3, Eq. 2).

A U-Net sees the composite and its mask. In the decoder, at each of the three
modulated scales, the foreground's features take the per-channel mean and
standard deviation of features of the *complete* background (Eq. 2,
:func:`~models.ops.feature_stats.adain`), and a 1×1-conv + sigmoid attention
block weighs the concatenation with the encoder's skip (the DoveNet pattern the
paper follows). The background features come from their own branch, two
conv3×3 + ReLU per modulated scale on the background resized to that scale;
only their statistics are used, so :meth:`AdainNet.background_stats` computes
them once per background and the caller caches them.

Choices the paper leaves open (ours, for a network that trains from scratch on a
CPU and predicts at 128² in a few milliseconds):

* widths ``width·(1, 2, 4, 4, 4)`` over ``levels`` = 5 stride-2 encoder levels
  (conv3×3 s2 + LeakyReLU 0.2, no normalisation: instance norm would erase the very
  colour offsets the network must see); decoder steps upsample bilinearly to the
  skip's size (any input size works), then conv3×3 + ReLU;
* Eq. 2 is applied to the up-sampled decoder features, before the skip
  concatenation, on the three finest decoder scales below full resolution
  (H/2, H/4, H/8), with the mask area-averaged to each scale as soft weights; the
  background branch of scale H/2^k sees the background area-averaged k times;
  σ is the standard deviation (the paper says "variance" but normalises by it);
* the output is a residual added to the composite inside the mask, from a
  zero-initialised last convolution: the untrained network is the identity and a
  harmonious composite needs only a zero residual ("do no harm");
* input: composite in [−1, 1] and mask in [0, 1]; output clamped to [0, 1].
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.ops.checkpoint import load_state_dict_file, load_strict, stored_options
from models.ops.feature_stats import adain, mean_std

#: Background statistics of one modulated scale: (mean, std), each N×C×1×1.
Stats = tuple[Tensor, Tensor]
MODULATED = 3
WIDTH_STEPS = (1, 2, 4, 4, 4, 4)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


def _halve(x: Tensor) -> Tensor:
    """2×2 area average to the size a stride-2 conv3×3 produces (⌈H/2⌉×⌈W/2⌉; a last odd row or column
    averages its own pixels). Pooling, unlike an interpolation to a computed size, exports to ONNX."""
    return F.avg_pool2d(x, 2, 2, ceil_mode=True)


class BackgroundBranch(nn.Module):
    """s(I_bg) of Eq. 2 at one scale: two conv3×3 + ReLU on the background reduced to that scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(3, channels), nn.ReLU(), _conv(channels, channels), nn.ReLU())

    def forward(self, background: Tensor) -> Stats:
        return mean_std(self.body(background * 2 - 1))


class Attention(nn.Module):
    """x ⊙ sigmoid(conv1×1(x)): a per-pixel, per-channel gate on the decoder's concatenation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.gate(x))


class AdainNet(nn.Module):
    """Composite + mask (+ background statistics) → harmonized composite, all N×C×H×W in [0, 1]."""

    def __init__(self, width: int = 16, levels: int = 5) -> None:
        super().__init__()
        if not MODULATED < levels <= len(WIDTH_STEPS):
            raise ValueError(f"levels must be between {MODULATED + 1} and {len(WIDTH_STEPS)}")
        self.width, self.levels = width, levels
        widths = [width * k for k in WIDTH_STEPS[:levels]]
        self.encoder = nn.ModuleList(
            nn.Sequential(_conv(4 if i == 0 else widths[i - 1], widths[i], 2), nn.LeakyReLU(0.2))
            for i in range(levels))
        # Decoder step i produces features at encoder level i's scale from level i+1's.
        self.up = nn.ModuleList(
            nn.Sequential(_conv(widths[i + 1] if i == levels - 2 else 2 * widths[i + 1], widths[i]), nn.ReLU())
            for i in range(levels - 1))
        self.attention = nn.ModuleList(Attention(2 * widths[i]) for i in range(MODULATED))
        self.background = nn.ModuleList(BackgroundBranch(widths[i]) for i in range(MODULATED))
        self.head = nn.Sequential(_conv(2 * widths[0] + 4, widths[0]), nn.ReLU(), _conv(widths[0], 3))
        nn.init.zeros_(self.head[-1].weight)  # residual 0: the identity until trained
        nn.init.zeros_(self.head[-1].bias)

    def background_stats(self, background: Tensor) -> list[Stats]:
        """μ and σ of s(I_bg) at the modulated scales (the background halved once per level, like the
        composite in the encoder; pass it at the composite's size).

        Depends on the background alone: compute once per background and reuse.
        """
        stats = []
        for branch in self.background:
            background = _halve(background)
            stats.append(branch(background))
        return stats

    def forward(self, composite: Tensor, mask: Tensor, stats: list[Stats]) -> Tensor:
        x = torch.cat([composite * 2 - 1, mask], 1)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        masks = [_halve(mask)]  # the mask at each modulated scale, as soft weights
        for _ in range(MODULATED - 1):
            masks.append(_halve(masks[-1]))
        x = skips[-1]
        for i in reversed(range(self.levels - 1)):
            skip = skips[i]
            x = self.up[i](F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
            if i < MODULATED:
                x = self.attention[i](torch.cat([adain(x, masks[i], *stats[i]), skip], 1))
            else:
                x = torch.cat([x, skip], 1)
        x = F.interpolate(x, size=composite.shape[-2:], mode="bilinear", align_corners=False)
        residual = self.head(torch.cat([x, composite * 2 - 1, mask], 1))
        return (composite + mask * residual).clamp(0, 1)

    def harmonize(self, composite: Tensor, mask: Tensor, background: Tensor) -> Tensor:
        """One call from the three images (the background statistics computed inside)."""
        return self(composite, mask, self.background_stats(background))

    def options(self) -> dict[str, int]:
        """The constructor arguments, as stored in a weights file's metadata."""
        return {"width": self.width, "levels": self.levels}

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> AdainNet:
        """A network built from the options in ``path``'s metadata, with its weights loaded strictly."""
        state = load_state_dict_file(path, "AdaIN harmonizer weights")
        net = cls(**stored_options(path, {"width": int, "levels": int}, "AdaIN harmonizer weights",
                                   "models.training.train_adain"))
        load_strict(net, {k: v.float() for k, v in state.items()}, "AdaIN harmonizer network", path)
        return net.eval()
