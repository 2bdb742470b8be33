"""MediaPipe's selfie segmentation network as a torch module.

The model is described in Google's "MediaPipe Selfie Segmentation" model card
(2021): a MobileNetV3-like encoder (inverted residual blocks with hard-swish and
squeeze-and-excitation, Howard et al., "Searching for MobileNetV3", ICCV 2019),
an LR-ASPP-like head, and a light decoder that upsamples three times, each time
fusing an encoder skip through a channel attention gate, then a stride-2
transposed convolution to the input size and a sigmoid. The general model takes
256×256 RGB, the landscape model 144×256; both have the same layers (the weights
differ), so one module serves both. Weights come from the ``.tflite`` files by
:mod:`models.matting.selfie_torch.convert`.

Layers are registered in the order the TFLite graph runs them, which is the order
the converter fills them in. Convolutions pad like TensorFlow's ``SAME``: at
stride 2 on an even size that is one pixel less before than after, which torch's
symmetric padding would get wrong by one pixel.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Each stride-2 layer halves the size exactly only on sizes divisible by this.
SIZE_MULTIPLE = 16


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's ``SAME`` (inputs of even size at stride 2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups)
        total = max(kernel - stride, 0)
        self.pad = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


class PatchConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution whose kernel equals its stride (each input pixel paints its own s×s patch),
    run as a 1×1 convolution and a pixel shuffle: the same numbers, about 4× faster on a CPU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(cin, cout, stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        cin, cout = self.weight.shape[:2]
        # [in, out, s, s] -> [out·s·s, in, 1, 1], ordered as pixel_shuffle reads its channels.
        weight = self.weight.permute(1, 2, 3, 0).reshape(cout * s * s, cin, 1, 1)
        return F.pixel_shuffle(F.conv2d(x, weight, self.bias.repeat_interleave(s * s)), s)


def depthwise(channels: int, kernel: int, stride: int = 1) -> SameConv2d:
    return SameConv2d(channels, channels, kernel, stride, groups=channels)


class SqueezeExcite(nn.Module):
    """Channel gate from the global mean: 1×1 reduce, ReLU, 1×1 expand, sigmoid (a plain sigmoid here)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1×1 expand, k×k depthwise, optional squeeze-excite, 1×1 project (+ skip)."""

    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int, hard_swish: bool,
                 se_hidden: int = 0) -> None:
        super().__init__()
        self.expand = nn.Conv2d(cin, hidden, 1)
        self.depthwise = depthwise(hidden, kernel, stride)
        self.se = SqueezeExcite(hidden, se_hidden) if se_hidden else None
        self.project = nn.Conv2d(hidden, cout, 1)
        self.act = F.hardswish if hard_swish else F.relu
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.depthwise(self.act(self.expand(x))))
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class Head(nn.Module):
    """LR-ASPP-like head: ReLU(1×1 conv) of the features times a sigmoid gate from their global mean."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.branch = nn.Conv2d(cin, cout, 1)
        self.gate = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(x)) * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True)))


class Upsample(nn.Module):
    """Decoder step: twice the size, fused with an encoder skip through a channel attention gate.

    up = 1×1 conv of the bilinear 2× enlargement; y = skip·gate(skip + up) + up; then a 1×1 conv
    with ReLU and a residual 3×3 depthwise conv with ReLU.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 1)
        self.attention = SqueezeExcite(cout, cout)
        self.mix = nn.Conv2d(cout, cout, 1)
        self.refine = depthwise(cout, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # TFLite's RESIZE_BILINEAR with half-pixel centres is torch's align_corners=False.
        up = self.reduce(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        y = F.relu(self.mix(skip * self.attention.gate(skip + up) + up))
        return y + F.relu(self.refine(y))


class SelfieSegmenter(nn.Module):
    """MediaPipe selfie segmentation (general 256×256 or landscape 144×256 weights).

    Input: RGB N×3×H×W in [0, 1], H and W multiples of :data:`SIZE_MULTIPLE` (the weights were
    trained at their model's size). Output: person probability N×1×H×W.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 16, 3, stride=2)
        self.encoder = nn.ModuleList([
            InvertedResidual(16, 16, 16, 3, 2, hard_swish=False, se_hidden=8),
            InvertedResidual(16, 72, 24, 3, 2, hard_swish=False),
            InvertedResidual(24, 88, 24, 3, 1, hard_swish=False),
            InvertedResidual(24, 96, 32, 5, 2, hard_swish=True, se_hidden=24),
            InvertedResidual(32, 128, 32, 5, 1, hard_swish=True, se_hidden=32),
            InvertedResidual(32, 128, 32, 5, 1, hard_swish=True, se_hidden=32),
            InvertedResidual(32, 96, 32, 5, 1, hard_swish=True, se_hidden=24),
            InvertedResidual(32, 96, 32, 5, 1, hard_swish=True, se_hidden=24),
        ])
        self.head = Head(32, 128)
        self.decoder = nn.ModuleList([Upsample(128, 24), Upsample(24, 16), Upsample(16, 16)])
        self.out = PatchConvTranspose2d(16, 1, 2)

    #: Encoder blocks whose outputs the decoder steps take as skips (the stem's output is the last one).
    SKIPS = (2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = F.hardswish(self.stem(x))
        features = []
        y = stem
        for block in self.encoder:
            y = block(y)
            features.append(y)
        y = self.head(y)
        for step, skip in zip(self.decoder, [*(features[i] for i in self.SKIPS), stem]):
            y = step(y, skip)
        return torch.sigmoid(self.out(y))
