"""HPBNet (Wang et al., "Harmonized Portrait-Background Image Composition", CGF 2023, §3.2–3.3, Fig. 3).

A U-Net (§3.2) sees the composite and its mask. Its bottleneck is pooled and
projected into the latent space of a StyleGAN2-style synthesis network (§3.3: an
MLP mapping network, then per-layer codes, W+); the synthesis network rebuilds the
image coarse to fine from the bottleneck features, and at every scale the U-Net
decoder's features of that scale are concatenated with the synthesis features and
reduced by a 1×1 convolution (the paper's "concatenate layers"). Each scale is a
modulated/demodulated 3×3 convolution (:class:`ModulatedConv`) and a ToRGB skip.
The result is corrected by Eq. 3 (:func:`colour_temperature_correction`) against
the composite's visible background.

Choices the paper leaves open, or that we change for a network that trains from
scratch on a CPU in under an hour and predicts at 96² in a few milliseconds (the
paper's runs at 512² in 0.2 s on a V100):

* sizes: ``levels`` (4) stride-2 levels instead of seven, widths ``width·(1, 2, 4, 4,
  4, 4, 4)`` (16 → 64 channels), one conv per encoder and decoder level plus the
  stride-2 conv (the paper has three per scale), LeakyReLU 0.2, no normalisation
  (instance norm would erase the colour offsets the network has to see). That is
  0.45 M parameters and 1.8 GFLOPs a 256² frame (the 0.25-narrow HPBNet-lite of our
  sizing study: 16 GFLOPs); 41 ms at 256² and 8 ms at 96² on one shared CPU thread,
  so far above 15 FPS at 256² on any CUDA GPU;
* latent: the bottleneck is average-pooled over the foreground, the background and
  the whole image (any input size works, and the foreground/background contrast is
  what harmonization needs); beside it, the composite's RGB mean and standard
  deviation over foreground and background (12 numbers: the colour contrast itself,
  which a small encoder trained for minutes would otherwise have to learn to extract;
  with them a 150-step trial at 64² reached 0.82 of the input's foreground error
  instead of 0.93). All of it is projected to ``w_dim`` (64) and fed to the mapping MLP
  (PixelNorm + ``mlp_layers`` (4, the paper 8) Linear + LeakyReLU) that gives w; W+
  is w plus a learned per-layer offset of w (pSp-style), one code per scale;
* synthesis: one modulated conv per scale (StyleGAN2 has two), starting from the
  bottleneck features instead of StyleGAN's learned 4×4 constant (the paper sends the
  bottleneck to the generator as its input); bilinear up-sampling to the next U-Net
  scale's size instead of transposed conv + blur (pure PyTorch, any size, ONNX);
  noise injection is optional and off by default (``noise``), and when on it is
  used only while training, so a frame always gives the same output;
* the coarse-to-fine images of Eq. 1: the running ToRGB skip sum at scale i, added
  to the composite at that scale, is the harmonized image Î^i ("each scale learns the
  residual of the scale", §3.2). The ToRGB layers start at zero, so the untrained
  network changes nothing: a harmonious composite needs a zero residual, and a
  network that starts from "change nothing" trains fastest (it only has to learn
  the correction, never to reproduce the picture);
* input: composite in [−1, 1] and mask in [0, 1]; residuals in [0, 1] units; the
  output is clamped to [0, 1].

The frozen FFHQ StyleGAN2 of the paper is not available: :meth:`HpbNet.generate`
runs the generator alone (z → w, a learned constant, no U-Net features) so it can be
pretrained as an unconditional GAN, and :meth:`HpbNet.generator_parameters` lists what
``--freeze-generator`` freezes.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.harmonizers.hpbnet.colour_temperature import colour_temperature_correction
from models.ops.checkpoint import load_state_dict_file, load_strict, stored_options
from models.ops.feature_stats import masked_mean_std

WIDTH_STEPS = (1, 2, 4, 4, 4, 4, 4)
#: Options stored in a weights file's ``architecture`` metadata.
OPTIONS = ("width", "levels", "w_dim", "mlp_layers", "noise")
#: Side of the learned constant the unconditional generator starts from (StyleGAN's 4×4).
CONST_SIZE = 4
DEMOD_EPS = 1e-8
#: Colour statistics beside the pooled bottleneck: RGB mean and std of the foreground and the background.
COLOUR_STATS = 12


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


def _halve(x: Tensor) -> Tensor:
    """2×2 area average to the size a stride-2 conv3×3 produces (⌈H/2⌉×⌈W/2⌉); exports to ONNX."""
    return F.avg_pool2d(x, 2, 2, ceil_mode=True)


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution (Karras et al. 2020, Eq. 1–3), without the grouped-conv trick.

    With style s = affine(w) (per input channel, bias initialised to 1 as in StyleGAN2), the
    per-sample weight is w'_oik = s_i·w_oik and, when ``demodulate``, w''_oik = w'_oik / sqrt(Σ_ik w'_oik² + ε).
    Computed as conv(x·s, w) · d with d_o = 1/sqrt(Σ_i s_i² Σ_k w_oik² + ε): the same numbers as a
    per-sample weight, but one ordinary convolution for the whole batch (faster on a CPU, plain ONNX).
    """

    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        style = self.affine(w)                                        # N×cin
        out = F.conv2d(x * style[:, :, None, None], self.weight, padding=self.padding)
        if self.demodulate:
            energy = self.weight.pow(2).sum((2, 3))                   # cout×cin
            out = out * torch.rsqrt(style.pow(2) @ energy.T + DEMOD_EPS)[:, :, None, None]
        return out


class StyledConv(nn.Module):
    """Modulated conv3×3 + optional noise (training only) + bias + LeakyReLU: one synthesis layer."""

    def __init__(self, cin: int, cout: int, w_dim: int, noise: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, w_dim)
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))
        # StyleGAN's per-channel noise strength, zero at first; absent when noise is off.
        self.noise_strength = nn.Parameter(torch.zeros(())) if noise else None
        self.act = _act()

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = self.conv(x, w)
        if self.noise_strength is not None and self.training:
            x = x + self.noise_strength * torch.randn_like(x[:, :1])
        return self.act(x + self.bias)


class ToRGB(nn.Module):
    """1×1 modulated conv without demodulation: this scale's residual colours (zero until trained)."""

    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, 3, w_dim, kernel=1, demodulate=False)
        nn.init.zeros_(self.conv.weight)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias


class Mapping(nn.Module):
    """The mapping MLP (§3.3): PixelNorm, then ``layers`` × (Linear + LeakyReLU) → w."""

    def __init__(self, w_dim: int, layers: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*(m for _ in range(layers) for m in (nn.Linear(w_dim, w_dim), _act())))

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8))


class HpbNet(nn.Module):
    """Composite + mask → harmonized composite (N×3×H×W in [0, 1]), U-Net + StyleGAN2-style synthesis."""

    def __init__(self, width: int = 16, levels: int = 4, w_dim: int = 64, mlp_layers: int = 4,
                 noise: bool = False) -> None:
        super().__init__()
        if not 2 <= levels <= len(WIDTH_STEPS):
            raise ValueError(f"levels must be between 2 and {len(WIDTH_STEPS)}")
        self.width, self.levels, self.w_dim, self.mlp_layers, self.noise = width, levels, w_dim, mlp_layers, noise
        # Channels at scale k (k = 0: full resolution, k = levels: the bottleneck).
        widths = [width] + [width * s for s in WIDTH_STEPS[:levels]]
        self.encoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(4 if k == 1 else widths[k - 1], widths[k], 3, 2, 1), _act(),
                          nn.Conv2d(widths[k], widths[k], 3, 1, 1), _act())
            for k in range(1, levels + 1))
        # Decoder step k: up-sampled scale k+1 with the encoder's skip at scale k → features at scale k.
        self.decoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[k + 1] + widths[k], widths[k], 3, 1, 1), _act())
            for k in range(1, levels))
        # §3.3 "decoupling" of the pooled bottleneck into W+.
        self.project = nn.Linear(3 * widths[levels] + COLOUR_STATS, w_dim)
        self.mapping = Mapping(w_dim, mlp_layers)
        self.offsets = nn.Linear(w_dim, (levels + 1) * w_dim)  # W+ = w + per-scale offset
        nn.init.zeros_(self.offsets.weight)
        nn.init.zeros_(self.offsets.bias)
        # Synthesis, coarse to fine: scale k has a concatenate layer (not at the bottleneck, whose
        # features are the generator's input), a styled conv and a ToRGB.
        self.start = nn.Conv2d(widths[levels], widths[levels], 1)
        self.const = nn.Parameter(torch.randn(1, widths[levels], CONST_SIZE, CONST_SIZE))
        # The U-Net's features at scale k: the decoder's (scale 1…levels−1) or, at full resolution, the input.
        unet = [4] + widths[1:levels]
        self.concat = nn.ModuleList(nn.Conv2d(widths[k + 1] + unet[k], widths[k + 1], 1) for k in range(levels))
        self.convs = nn.ModuleList(StyledConv(widths[k + 1] if k < levels else widths[k], widths[k], w_dim, noise)
                                   for k in range(levels + 1))
        self.to_rgb = nn.ModuleList(ToRGB(widths[k], w_dim) for k in range(levels + 1))

    # --- parts -----------------------------------------------------------------------------------
    def encode(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], Tensor]:
        """(U-Net features per scale 0…levels−1 — the input at scale 0 —, the bottleneck)."""
        skips = [x]
        for block in self.encoder:
            skips.append(block(skips[-1]))
        bottleneck = skips[-1]
        features = [x]
        y = bottleneck
        for k in reversed(range(1, self.levels)):
            y = self.decoder[k - 1](torch.cat([_up(y, skips[k]), skips[k]], 1))
            features.insert(1, y)
        return features, bottleneck

    def latent(self, composite: Tensor, mask: Tensor, bottleneck: Tensor) -> Tensor:
        """W+ (N × (levels+1) × w_dim) from the bottleneck pooled over foreground, background and all,
        and the composite's colour mean and standard deviation over foreground and background."""
        small = mask
        for _ in range(self.levels):  # the mask at the bottleneck's size, as soft weights
            small = _halve(small)
        fg = masked_mean_std(bottleneck, small)[0]
        bg = masked_mean_std(bottleneck, 1 - small)[0]
        colours = [*masked_mean_std(composite, mask), *masked_mean_std(composite, 1 - mask)]
        pooled = torch.cat([fg, bg, bottleneck.mean((2, 3), keepdim=True), *colours], 1).flatten(1)
        w = self.mapping(self.project(pooled))
        return w[:, None] + self.offsets(w).view(-1, self.levels + 1, self.w_dim)

    def synthesize(self, x: Tensor, wplus: Tensor, features: list[Tensor | None]) -> list[Tensor]:
        """The running ToRGB sums (residual colours), coarsest first, one per scale levels…0.

        ``x``: the generator's input at the bottleneck scale; ``features[k]``: the U-Net's features at
        scale k, or None for the unconditional generator (then scale k is twice scale k+1).
        """
        levels = self.levels
        x = self.convs[levels](x, wplus[:, 0])
        rgb = self.to_rgb[levels](x, wplus[:, 0])
        outputs = [rgb]
        for k in reversed(range(levels)):
            unet = features[k]
            if unet is None:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                unet = x.new_zeros(x.shape[0], self.concat[k].in_channels - x.shape[1], *x.shape[-2:])
            else:
                x = _up(x, unet)
            x = self.concat[k](torch.cat([x, unet], 1))
            w = wplus[:, levels - k]
            x = self.convs[k](x, w)
            rgb = _up(rgb, x) + self.to_rgb[k](x, w)
            outputs.append(rgb)
        return outputs

    # --- use ---------------------------------------------------------------------------------------
    def pyramid(self, composite: Tensor, mask: Tensor) -> list[Tensor]:
        """Î^i of Eq. 1 before Eq. 3: the harmonized image at every scale, coarsest first (full size last)."""
        x = torch.cat([composite * 2 - 1, mask], 1)
        features, bottleneck = self.encode(x, mask)
        residuals = self.synthesize(self.start(bottleneck), self.latent(composite, mask, bottleneck), features)
        images = [composite]
        for _ in range(self.levels):
            images.append(_halve(images[-1]))
        return [image + residual for image, residual in zip(reversed(images), residuals)]

    def forward(self, composite: Tensor, mask: Tensor) -> Tensor:
        """The final result: the full-size Î corrected by Eq. 3 inside the mask, the background kept."""
        return colour_temperature_correction(self.pyramid(composite, mask)[-1], composite, mask)

    def generate(self, z: Tensor) -> Tensor:
        """The generator alone, for unconditional pretraining: z (N×w_dim) → an image in [0, 1] of side
        ``CONST_SIZE·2^levels`` (the residual of a mid-grey canvas)."""
        w = self.mapping(z)
        rgb = self.synthesize(self.const.expand(z.shape[0], -1, -1, -1),
                              w[:, None].expand(-1, self.levels + 1, -1), [None] * self.levels)[-1]
        return rgb + 0.5

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """What the paper keeps frozen (the pretrained StyleGAN): mapping MLP, constant, styled convs, ToRGBs.
        The U-Net, the projection into W+ and the concatenate layers stay trainable."""
        for module in (self.mapping, self.convs, self.to_rgb):
            yield from module.parameters()
        yield self.const

    def options(self) -> dict[str, int | bool]:
        """The constructor arguments, as stored in a weights file's metadata."""
        return {"width": self.width, "levels": self.levels, "w_dim": self.w_dim, "mlp_layers": self.mlp_layers,
                "noise": self.noise}

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> HpbNet:
        """A network built from the options in ``path``'s metadata, with its weights loaded strictly."""
        state = load_state_dict_file(path, "HPBNet weights")
        types = {k: bool if k == "noise" else int for k in OPTIONS}
        net = cls(**stored_options(path, types, "HPBNet weights", "models.training.train_hpbnet"))
        load_strict(net, {k: v.float() for k, v in state.items()}, "HPBNet harmonizer network", path)
        return net.eval()
