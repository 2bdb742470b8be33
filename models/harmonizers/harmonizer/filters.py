"""The six white-box filters of Harmonizer, in torch (any device, differentiable).

Paper: Z. Ke, C. Sun, L. Zhu, K. Xu, R. W. H. Lau, "Harmonizer: Learning to Perform
White-Box Image and Video Harmonization", ECCV 2022. The formulas follow the
authors' public code, which differs from the paper in these points:

* Order: temperature, brightness, contrast, saturation, highlight, shadow
  (the paper lists brightness first). Regressor head ``i`` feeds filter ``i``.
* Arguments are the raw regressor outputs hard-clamped to [-1, 1] and used as
  they are. ``ARG_RANGES`` only scales the random arguments of the reverse-order
  "adjust" pass that synthesises training composites.
* The running state is never masked: temperature's channel means and contrast's
  mean are taken over the whole current image (background included), after the
  previous filters. Only the outputs are blended with the mask.
* Brightness scales V in HSV; since H and S are unchanged and RGB is linear in V,
  that is an RGB gain, which is what the fast chain uses.
* Contrast with x > 0 is quantised like an 8-bit slider and has zero gradient.

The video EMA of the arguments (0.96 in the code, 0.9 in the paper) belongs to
the harmonizer, not to this module.

Images are N×3×H×W RGB in [0, 1] (plain sRGB values, nothing linearised).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

FILTER_ORDER = ("temperature", "brightness", "contrast", "saturation", "highlight", "shadow")
# Training-only scale of the synthesis arguments, in FILTER_ORDER.
ARG_RANGES = (0.3, 0.5, 0.5, 0.6, 0.4, 0.4)

_EPS = 1e-6
_POW_EPS = 1e-9


def _arg(x: Tensor | float, image: Tensor) -> Tensor:
    """One argument per image, shaped N×1×1×1 to broadcast over N×3×H×W."""
    x = torch.as_tensor(x, dtype=image.dtype, device=image.device)
    return x.reshape(-1, 1, 1, 1)


def temperature_gains(means: Tensor, x: Tensor) -> Tensor:
    """Per-channel gains (N×3×1×1) of the temperature filter from the channel means (N×3×1×1)."""
    gray = means.sum(dim=1, keepdim=True) / 3
    offset = 1 - gray / (means + _EPS)
    mag = x.abs()
    zero = torch.zeros_like(x)
    # |x| is added to the red mean when cooling, to the blue mean when warming,
    # and half of it to the green mean either way.
    shift = torch.cat((torch.where(x < 0, mag, zero), 0.5 * mag, torch.where(x > 0, mag, zero)), dim=1)
    shifted = means + shift
    gray_shifted = shifted.sum(dim=1, keepdim=True) / 3
    return gray_shifted / (shifted + _EPS) + offset


def temperature(image: Tensor, x: Tensor) -> Tensor:
    """Gray-world white-balance shift: x > 0 warmer, x < 0 cooler."""
    return (image * temperature_gains(image.mean(dim=(2, 3), keepdim=True), x)).clamp(0, 1)


def brightness_gain(x: Tensor) -> Tensor:
    """The RGB gain of the brightness filter."""
    # Log-symmetric: x = +0.5 doubles, x = -0.5 halves.
    return torch.where(x >= 0, 1 / (1 - x + _EPS), 1 + x)


def brightness(image: Tensor, x: Tensor) -> Tensor:
    """Gain on V of HSV, which is the same gain on R, G and B."""
    return (image * brightness_gain(x)).clamp(0, 1)


def contrast_factor(x: Tensor) -> Tensor:
    """k of ``out = I + (I − mean)·k``."""
    # The positive branch goes through floor() like an 8-bit slider, so its gradient
    # is zero in the official code; where() keeps exactly that (and the x <= 0
    # branch's gradient of 1), so training behaves the same.
    positive = 255 / (256 - torch.floor(x * 255)) - 1
    return torch.where(x > 0, positive, x)


def contrast(image: Tensor, x: Tensor) -> Tensor:
    """Stretch about the mean of all pixels and channels of the current image."""
    pivot = image.mean(dim=(1, 2, 3), keepdim=True)
    return (image + (image - pivot) * contrast_factor(x)).clamp(0, 1)


def saturation(image: Tensor, x: Tensor) -> Tensor:
    """HSL-style saturation; x > 0 never pushes a pixel past the gamut boundary."""
    cmax = image.max(dim=1, keepdim=True).values
    cmin = image.min(dim=1, keepdim=True).values
    chroma = cmax - cmin
    total = cmax + cmin
    light = total / 2
    sat = torch.where(light < 0.5, chroma / (total + _EPS), chroma / (2 - total + _EPS))
    # Per-pixel cap: the gain never exceeds what brings this pixel to the boundary.
    base = torch.where(x + sat > 1, sat, 1 - x)
    gain_pos = 1 / (base + _EPS)
    out = torch.where(x >= 0, light + (image - light) * gain_pos, light + (image - light) * (1 + x))
    return out.clamp(0, 1)


def highlight(image: Tensor, x: Tensor) -> Tensor:
    """Gamma on the inverted image: x > 0 brightens, mostly the highlights."""
    curve = (1 - image + _POW_EPS).pow(1 + x).clamp(0, 1)
    return (1 - curve).clamp(0, 1)


def shadow(image: Tensor, x: Tensor) -> Tensor:
    """Gamma: x > 0 lifts the shadows."""
    return (image + _POW_EPS).pow(1 - x).clamp(0, 1)


_FILTERS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "temperature": temperature,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "highlight": highlight,
    "shadow": shadow,
}


def apply_filter(name: str, image: Tensor, x: Tensor | float) -> Tensor:
    """Apply one filter to ``image`` (N×3×H×W in [0,1]) with argument ``x`` ((N,) or (N,1)).

    Unmasked and unclamped, like the official filter modules: the chain clamps.
    """
    try:
        fn = _FILTERS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTER_ORDER)}") from None
    return fn(image, _arg(x, image))


def _blend(state: Tensor, image: Tensor, mask: Tensor | None) -> Tensor:
    return state if mask is None else state * mask + image * (1 - mask)


def _run(image: Tensor, args: Tensor, mask: Tensor | None, order: tuple[int, ...],
         scales: tuple[float, ...], return_all: bool) -> Tensor | list[Tensor]:
    args = torch.as_tensor(args, dtype=image.dtype, device=image.device)
    args = args.reshape(image.shape[0], len(FILTER_ORDER)).clamp(-1, 1)
    state = image
    outputs = []
    for i in order:
        state = _FILTERS[FILTER_ORDER[i]](state, _arg(args[:, i] * scales[i], image))
        if return_all:
            outputs.append(_blend(state, image, mask))
    return outputs if return_all else _blend(state, image, mask)


def apply_filters(image: Tensor, args: Tensor, mask: Tensor | None = None,
                  return_all: bool = False) -> Tensor | list[Tensor]:
    """Harmonize: run the chain in FILTER_ORDER with ``args`` (N×6 raw regressor outputs).

    ``args`` are clamped to [-1, 1]. The running state is unmasked; the result is
    ``state·mask + image·(1−mask)`` when ``mask`` (N×1×H×W) is given. With
    ``return_all`` the blended output after every filter is returned (the
    official ``restore`` list, which the training loss uses).
    """
    return _run(image, args, mask, tuple(range(len(FILTER_ORDER))), (1.0,) * len(FILTER_ORDER),
                return_all)


def adjust_filters(image: Tensor, args: Tensor, mask: Tensor | None = None,
                   return_all: bool = False) -> Tensor | list[Tensor]:
    """Synthesise an inharmonious foreground from a real image (training data).

    ``args`` (N×6, in FILTER_ORDER) are clamped to [-1, 1] and scaled by
    ``ARG_RANGES``; the filters run in reverse order (shadow first, temperature
    last). With ``return_all`` the outputs come in application order.
    """
    return _run(image, args, mask, tuple(reversed(range(len(FILTER_ORDER)))), ARG_RANGES,
                return_all)


# --- Reference: a direct transcription of the official per-filter behaviour --------------

def rgb_to_hsv(image: Tensor) -> Tensor:
    """RGB in [0,1] → H (in sixths of a turn, [0, 6)), S, V.

    The official code uses radians; sixths avoid a π scaling that would leave
    hues of exactly 0 at 1e-17 and so turn zeros into 1e-18 on the way back.
    """
    cmax, argmax = image.max(dim=1, keepdim=True)
    cmin = image.min(dim=1, keepdim=True).values
    delta = cmax - cmin
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    # Hue in sixths of a turn, from whichever channel is the maximum.
    sector = torch.where(argmax == 0, torch.remainder((g - b) / safe, 6),
                         torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, sector, torch.zeros_like(sector))
    sat = torch.where(cmax > 0, delta / torch.where(cmax > 0, cmax, torch.ones_like(cmax)),
                      torch.zeros_like(cmax))
    return torch.cat((hue, sat, cmax), dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h = torch.remainder(hsv[:, 0:1], 6)
    s, v = hsv[:, 1:2], hsv[:, 2:3]
    sector = torch.floor(h).clamp(0, 5)
    frac = h - sector
    p = v * (1 - s)
    q = v * (1 - s * frac)
    t = v * (1 - s * (1 - frac))
    # (R, G, B) per sector 0..5.
    table = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    out = torch.zeros_like(hsv)
    for k, rgb in enumerate(table):
        out = torch.where(sector == k, torch.cat(rgb, dim=1), out)
    return out


def _brightness_hsv(image: Tensor, x: Tensor) -> Tensor:
    hsv = rgb_to_hsv(image)
    hsv = torch.cat((hsv[:, :2], hsv[:, 2:] * brightness_gain(x)), dim=1)
    return hsv_to_rgb(hsv).clamp(0, 1)


def apply_filters_reference(image: Tensor, args: Tensor, mask: Tensor | None = None,
                            return_all: bool = False) -> Tensor | list[Tensor]:
    """The official ``restore`` as written: slow on purpose, the baseline for tests and bench.

    Brightness goes through an RGB→HSV→RGB round trip and every filter's output is
    blended with the full-resolution mask (six full-frame blends), as the official
    code does; it returns the last output, or all six with ``return_all``.

    In float32 the round trip is exact only to ~1e-7·gain. The chain is
    ill-conditioned in places (contrast multiplies deviations by up to 255; highlight
    and shadow with exponents below 1 are infinitely steep at one end), so such
    last-bit differences, like a different summation order of the means, can grow to
    1e-4 and beyond at extreme arguments. In float64 the round trip is exact.
    """
    args = torch.as_tensor(args, dtype=image.dtype, device=image.device)
    args = args.reshape(image.shape[0], len(FILTER_ORDER)).clamp(-1, 1)
    mask = torch.ones_like(image[:, :1]) if mask is None else mask
    steps = dict(_FILTERS, brightness=_brightness_hsv)
    state = image
    outputs = []
    for i, name in enumerate(FILTER_ORDER):
        state = steps[name](state, _arg(args[:, i], image))
        outputs.append(state * mask + image * (1 - mask))
    return outputs if return_all else outputs[-1]
