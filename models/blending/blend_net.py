"""The shallow blending U-Net of Xing et al. (ACM MM 2022, §4.2, Figs. 6–7).

Input: the source frame S (the camera picture, still showing the old background),
the imperfect alpha α̃ from our matting and the complete new background B,
concatenated to 7 channels. Two stride-2 levels, bilinear up-sampling with skip
concatenation, 3×3 convolutions and ReLU throughout (the paper names a shallow
U-Net and nothing finer; the widths are ours and configurable).

Choices the paper leaves open, and why:

* **What it outputs.** Not a free image but a correction of the linear composite,
  expressed in the composite's own terms: Δα and ΔF, giving α = clamp(α̃ + Δα) and
  F = clamp(S + ΔF), and the output α·F + (1−α)·B. The last layer starts at zero,
  so an untrained network *is* linear blending, and the refined α and F are what
  the harmonizer downstream needs anyway (its region and the person's own colour).
* **Input scaling**: images and alpha centred on 0 (x − 0.5).
* The network needs sides divisible by 4; :func:`pad_to` pads by replication.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.ops.checkpoint import load_state_dict_file, load_strict

DIVISOR = 4


def _convs(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.ReLU(inplace=True))


class BlendUNet(nn.Module):
    """[S, α̃, B] → (refined α, foreground colour); see the module docstring."""

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        w0, w1, w2 = widths
        self.widths = tuple(widths)
        self.enc0 = _convs(7, w0)
        self.enc1 = _convs(w0, w1, stride=2)
        self.enc2 = _convs(w1, w2, stride=2)
        self.dec1 = _convs(w2 + w1, w1)
        self.dec0 = _convs(w1 + w0, w0)
        self.out = nn.Conv2d(w0, 4, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> BlendUNet:
        """Our saved weights; the widths are read from the tensor shapes. Eval mode."""
        state = load_state_dict_file(path, "blending network checkpoint")
        try:
            widths = tuple(int(state[k].shape[0]) for k in ("enc0.0.weight", "enc1.0.weight", "enc2.0.weight"))
        except KeyError:
            widths = (16, 32, 64)  # let load_strict name what is wrong
        net = cls(widths)
        load_strict(net, state, "blending network", path)
        return net.eval()

    def corrections(self, source: Tensor, alpha: Tensor, background: Tensor) -> Tensor:
        """N×4×H×W: Δα then ΔF (N×3×H×W inputs in [0,1], alpha N×1×H×W; sides divisible by 4)."""
        x0 = self.enc0(torch.cat((source, alpha, background), 1) - 0.5)
        x1 = self.enc1(x0)
        x2 = self.enc2(x1)
        up = F.interpolate(x2, size=x1.shape[-2:], mode="bilinear", align_corners=False)
        y1 = self.dec1(torch.cat((up, x1), 1))
        up = F.interpolate(y1, size=x0.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(self.dec0(torch.cat((up, x0), 1)))

    def forward(self, source: Tensor, alpha: Tensor, background: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(composite, refined α, foreground) at the input size."""
        delta = self.corrections(source, alpha, background)
        a, fg = refine(source, alpha, delta)
        return torch.lerp(background, fg, a), a, fg


def refine(source: Tensor, alpha: Tensor, delta: Tensor) -> tuple[Tensor, Tensor]:
    """(clamp(α̃ + Δα), clamp(S + ΔF)) from a correction tensor (any matching size)."""
    return (alpha + delta[:, :1]).clamp(0, 1), (source + delta[:, 1:]).clamp(0, 1)


def pad_to(x: Tensor, divisor: int = DIVISOR) -> Tensor:
    """``x`` padded at the bottom and right (edge replication) to sides divisible by ``divisor``."""
    h, w = x.shape[-2:]
    ph, pw = -h % divisor, -w % divisor
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
