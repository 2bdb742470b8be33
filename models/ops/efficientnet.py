"""EfficientNet building blocks with the key names of lukemelas' EfficientNet-PyTorch.

Both checkpoints we load use that layout: the official Harmonizer (a B0 whose
stem is replaced by two 4-channel stems) and the ImageNet EfficientNet-Lite0
weights. So the attribute names here (``_blocks.N._expand_conv``, ``_bn0``,
``_depthwise_conv``, ``_bn1``, ``_se_reduce``, ``_se_expand``, ``_project_conv``,
``_bn2``, ``_conv_head``, ``_bn1``) are part of the file format; do not rename them.

Both networks were trained with TensorFlow's "SAME" padding, which pads a
stride-2 layer asymmetrically (more on the right/bottom). torch's symmetric
``padding=`` would shift every feature map by half a pixel, so the padding is
computed like the originals do: statically, for a nominal input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, first stride, expand ratio, output channels) per stage, shared by
# B0 and Lite0 (width and depth multipliers 1.0).
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class EfficientNetConfig:
    """What distinguishes the EfficientNet variants we build."""

    se_ratio: float | None = 0.25          # None: no squeeze-excite (Lite)
    activation: str = "swish"              # "swish" or "relu6" (Lite)
    stem_channels: int = 32
    head_channels: int = 1280
    drop_connect_rate: float = 0.2         # maximum, reached by the last block
    image_size: int = 224                  # nominal size the static padding is computed for
    bn_momentum: float = 0.01              # torch convention (TF's 0.99)
    bn_eps: float = 1e-3


B0 = EfficientNetConfig()
LITE0 = EfficientNetConfig(se_ratio=None, activation="relu6")


def tf_same_padding(kernel: int, stride: int, size: int) -> tuple[int, int]:
    """(before, after) padding of TF "SAME" for one spatial axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def make_activation(name: str) -> nn.Module:
    if name == "swish":
        return nn.SiLU()  # x·sigmoid(x)
    if name == "relu6":
        return nn.ReLU6()
    raise ValueError(f"unknown activation {name!r}")


class SameConv2d(nn.Conv2d):
    """Conv2d with TF-"SAME" padding fixed at construction for a square input of ``size``.

    ``pad`` is (left, right, top, bottom) as for ``F.pad``. Symmetric padding is
    left to the convolution itself (no extra copy).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, size: int,
                 stride: int = 1, groups: int = 1, bias: bool = False) -> None:
        before, after = tf_same_padding(kernel_size, stride, size)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=before if before == after else 0, groups=groups, bias=bias)
        self.pad = (before, after, before, after)
        self._explicit_pad = before != after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._explicit_pad:
            x = F.pad(x, self.pad)
        return super().forward(x)


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Drop whole residual branches per sample (stochastic depth); identity at inference."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.floor(keep + torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device))
    return x / keep * mask


class MBConvBlock(nn.Module):
    """Inverted-residual block: 1×1 expand, depthwise k×k, optional SE, 1×1 project."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int, size: int, cfg: EfficientNetConfig,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        bn = dict(momentum=cfg.bn_momentum, eps=cfg.bn_eps)
        self._expand_conv = SameConv2d(in_channels, mid, 1, size) if expand_ratio != 1 else None
        self._bn0 = nn.BatchNorm2d(mid, **bn) if expand_ratio != 1 else None
        self._depthwise_conv = SameConv2d(mid, mid, kernel, size, stride=stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **bn)
        self._se_reduce = self._se_expand = None
        if cfg.se_ratio is not None:
            # Squeezed width follows the block's *input* channels, as in the reference.
            squeezed = max(1, int(in_channels * cfg.se_ratio))
            self._se_reduce = nn.Conv2d(mid, squeezed, 1)
            self._se_expand = nn.Conv2d(squeezed, mid, 1)
        self._project_conv = SameConv2d(mid, out_channels, 1, size)
        self._bn2 = nn.BatchNorm2d(out_channels, **bn)
        self._act = make_activation(cfg.activation)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self._expand_conv is not None:
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        if self._se_reduce is not None:
            s = F.adaptive_avg_pool2d(x, 1)
            s = self._se_expand(self._act(self._se_reduce(s)))
            x = x * torch.sigmoid(s)
        x = self._bn2(self._project_conv(x))
        if self.residual:
            x = drop_connect(x, self.drop_rate, self.training) + inputs
        return x


class EfficientNetTrunk(nn.Module):
    """An EfficientNet without its stem: MBConv blocks then the 1×1 head (conv, BN, act).

    Callers add their own stem(s) with :meth:`make_stem`, as attributes of a subclass
    so that the keys stay flat (``_conv_fg``, ``_blocks.0…``) like the references.
    Input: the stem output (``stem_channels`` × size/2); output: head features at
    1/32 of the image size.
    """

    def __init__(self, cfg: EfficientNetConfig = B0) -> None:
        super().__init__()
        self.cfg = cfg
        size = math.ceil(cfg.image_size / 2)  # after the stride-2 stem
        n_blocks = sum(stage[0] for stage in B0_STAGES)
        blocks = []
        channels = cfg.stem_channels
        for repeats, kernel, stride, expand, out_channels in B0_STAGES:
            for r in range(repeats):
                s = stride if r == 0 else 1
                rate = cfg.drop_connect_rate * len(blocks) / n_blocks
                blocks.append(MBConvBlock(channels, out_channels, kernel, s, expand, size, cfg, rate))
                channels = out_channels
                size = math.ceil(size / s)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, cfg.head_channels, 1, size)
        self._bn1 = nn.BatchNorm2d(cfg.head_channels, momentum=cfg.bn_momentum, eps=cfg.bn_eps)
        self._act = make_activation(cfg.activation)

    def make_stem(self, in_channels: int, out_channels: int) -> tuple[SameConv2d, nn.BatchNorm2d]:
        """A 3×3 stride-2 conv and its BN, padded like the reference stem."""
        conv = SameConv2d(in_channels, out_channels, 3, self.cfg.image_size, stride=2)
        return conv, nn.BatchNorm2d(out_channels, momentum=self.cfg.bn_momentum, eps=self.cfg.bn_eps)

    def stem(self, conv: nn.Module, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Apply a stem made by :meth:`make_stem` (conv, BN, activation)."""
        return self._act(bn(conv(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks and head applied to a stem output (subclasses' ``forward`` adds stems)."""
        for block in self._blocks:
            x = block(x)
        return self._act(self._bn1(self._conv_head(x)))

    forward = features
