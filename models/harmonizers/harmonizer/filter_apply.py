"""Apply the Harmonizer filter chain to a full-resolution uint8 frame, fast.

The six filters (see :mod:`models.harmonizers.harmonizer.filters`) are point-wise colour maps
plus two global statistics of the whole current image: temperature's channel
means and contrast's mean. Temperature, brightness and contrast act on each
channel alone, so both statistics follow exactly from the uint8 input (what a
per-channel histogram would give, here from ``cv2.mean`` and two clipped
minimums, which are faster; on frames above ``STATS_PIXELS`` from a regular
sample of that many pixels) and the three filters fuse into one 256-entry table
per channel. That leaves saturation (per pixel, across channels) and the
highlight∘shadow tone curve (one function for all channels).

CPU path ("lut"): T∘B∘C table (``cv2.LUT``) → saturation vectorised in float32 →
tone curve through a 65536-entry table indexed by the 16-bit rounded value →
blend with α → the keep-bright lift when one is given
(:mod:`models.harmonizers.keep_bright`), all restricted to the bounding box of
α>0 and processed in strips of about 131k pixels (``STRIP_PIXELS``). The lift is one luma gain
and offset, so in the strip it costs one plane shared by the three channels
instead of a second pass over the frame. Where the tone curve is too steep at an end for that
table (exponent below ~0.56, i.e. a highlight argument below ~-0.44 or a shadow
argument above ~0.44) it is evaluated exactly with ``cv2.pow`` instead.

Torch path ("torch", any device, the GPU path): the fused chain of
:func:`~models.harmonizers.harmonizer.filters.apply_filters` (brightness as a gain, one
blend), optionally through ``torch.compile``, which is never required: any
compile failure falls back to eager.

Output convention, shared with :func:`apply_filters_reference_uint8`:
``out = round(255·(state·α + composite·(1−α)))`` as uint8, rounded to nearest
(exact .5 ties may go either way). Pixels with α = 0 keep the composite exactly.
Both paths stay within one level of the reference; the CPU path is within
0.51 level of the reference's unrounded value, so they differ only next to ties.
One exception: where the highlight exponent is below ~0.56 and saturation drives a
channel to exactly 1.0, the curve's slope is unbounded there and float32 rounding of
one part in a million moves the result by up to 8 levels (any float32 path would).
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.keep_bright import LUMA
from models.ops.regions import strip_boxes
from models.ops.tensor_image import to_device

log = logging.getLogger(__name__)

# The CPU path carries colour values as floats on 0..65535, so the 16-bit
# rounding that indexes the tone table is a plain saturating conversion.
_SCALE = 65535.0
_EPS = 1e-6
_POW_EPS = 1e-9
# Largest step between neighbouring tone-table entries, in 1/255, that we accept:
# rounding to the nearest entry then errs by at most that, so the output stays
# within one level of the exact chain.
_MAX_TONE_STEP = 0.5
# The tone table is built for the highlight and shadow arguments rounded to this step, so that a
# stream whose smoothed arguments drift by a little every frame keeps one table (warm in the cache)
# instead of building a new one per frame. A curve 1 − (1 − x)^(1+h) moves by at most
# max_y(−y·ln y) = 1/e per unit of h, so half a step errs by at most 0.37·_TONE_STEP/2·255 ≈ 0.2 level.
_TONE_STEP = 1 / 256


def effective_args(args: np.ndarray | torch.Tensor | list[float], strength: float = 1.0) -> np.ndarray:
    """Clamp raw regressor outputs (6,) to [-1, 1] and scale them by ``strength`` in [0, 1]."""
    if isinstance(args, torch.Tensor):
        args = args.detach().cpu().numpy()
    a = np.clip(np.asarray(args, dtype=np.float32).reshape(len(F.FILTER_ORDER)), -1, 1)
    return (a * np.float32(min(1.0, max(0.0, strength)))).astype(np.float32)


@dataclass
class _Plan:
    """Per-frame constants of the CPU path."""

    lut: np.ndarray                      # 3×256 float32, T∘B∘C on 0.._SCALE
    saturation: float                    # 0: skipped
    tone: np.ndarray | None              # 65536 float32, 255·(shadow∘highlight)(k/65535)
    tone_exact: tuple[float, float] | None  # (highlight, shadow) when the table is too coarse
    lift: tuple[float, float] | None = None  # keep-bright (gain, offset) on [0,1] luma, applied after the blend


def _mean_clipped(composite: np.ndarray, gains: np.ndarray, cap: float) -> np.ndarray:
    """Per-channel mean of ``min(gain_c·v/255, cap)`` over the frame, exactly, in two passes.

    For integer v and real t = f + φ (f = ⌊t⌋): min(v, t) = (1−φ)·min(v, f) + φ·min(v, f+1),
    so two saturating uint8 minimums and two sums replace a histogram.
    """
    t = np.where(gains > 0, 255 * cap / np.maximum(gains, 1e-30), 0.0)
    f = np.floor(np.minimum(t, 255.0))
    frac = np.minimum(t, 255.0) - f
    low = np.array(cv2.mean(cv2.min(composite, (*f, 0.0)))[:3])
    high = np.array(cv2.mean(cv2.min(composite, (*np.minimum(f + 1, 255.0), 0.0)))[:3])
    return np.maximum(gains, 0) / 255 * ((1 - frac) * low + frac * high)


#: Temperature's channel means and contrast's pivot are means over the whole frame; a regular sample
#: of this many pixels gives them to a few 1/10000 on camera frames (the output moves by ~0.1 level),
#: at a sixth of the cost of reading a 1080p frame three times.
STATS_PIXELS = 1 << 17


def statistics_sample(image: np.ndarray) -> np.ndarray:
    """``image`` (H×W×3) itself when it has at most ``STATS_PIXELS`` pixels, else every k-th pixel of every
    k-th row (nearest neighbour), k the smallest step that leaves at most that many."""
    h, w = image.shape[:2]
    step = math.ceil(math.sqrt(h * w / STATS_PIXELS))
    if step <= 1:
        return image
    return cv2.resize(image, (max(1, w // step), max(1, h // step)), interpolation=cv2.INTER_NEAREST)


@dataclass
class ChannelCurves:
    """Temperature∘brightness∘contrast with the frame's statistics frozen: a per-channel map.

    ``gains`` are temperature's per-channel gains (from the frame's channel means),
    ``beta`` brightness's gain, ``pivot`` contrast's whole-frame mean after the first
    two filters and ``k`` its factor.
    """

    gains: torch.Tensor
    beta: torch.Tensor
    pivot: float
    k: torch.Tensor

    @classmethod
    def from_frame(cls, composite: np.ndarray, t: float, b: float, c: float) -> ChannelCurves:
        """Statistics of ``composite`` (uint8 H×W×3), exact, without a histogram.

        Temperature's means are ``cv2.mean`` of the frame. After temperature (gain k_c)
        and brightness (gain β) a channel is ``min(β·k_c·u, min(β, 1))`` (a negative k_c
        zeroes it), so contrast's pivot is an exact clipped mean.
        """
        # Gains come from float32 arguments in float32, as the torch chain computes them.
        gains = torch.ones(3, dtype=torch.float64)
        if t:
            means = torch.tensor(cv2.mean(composite)[:3], dtype=torch.float32) / 255
            gains = F.temperature_gains(means.view(1, 3, 1, 1), torch.tensor(t).view(1, 1, 1, 1))
            gains = gains.double().view(3)
        beta = F.brightness_gain(torch.tensor(b)).double()
        pivot = 0.0
        if c:
            pivot = float(_mean_clipped(composite, (gains * beta).numpy(), min(float(beta), 1.0)).mean())
        return cls(gains, beta, pivot, F.contrast_factor(torch.tensor(c)).double())

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """Map float64 values in [0,1] shaped (3, ...) channel by channel."""
        shape = (3,) + (1,) * (rgb.dim() - 1)
        out = (rgb * self.gains.view(shape)).clamp(0, 1)
        out = (out * self.beta).clamp(0, 1)
        return (out + (out - self.pivot) * self.k).clamp(0, 1)


def _tone_table(h: float, s: float) -> np.ndarray:
    grid = torch.arange(65536, dtype=torch.float32).view(1, 1, 1, -1) / _SCALE
    curve = F.apply_filter("shadow", F.apply_filter("highlight", grid, h), s)
    return (curve.flatten() * 255).numpy()


#: Pixels per strip of the CPU path. About 25 NumPy and OpenCV calls run per strip, and each lets the frame
#: loop's other thread take the interpreter in between: with 32k-pixel strips (chosen to keep the scratch
#: planes in L2) a 720p person took ~23 strips, and the two threads' handovers cost more than the cache
#: saved. At 131k the same frame is ~6 strips: alone 8.5 against 8.8 ms at 720p and 16.1 against 17.2 ms
#: at 1080p (2-core EPYC, sample clip), bit for bit the same output; in the frame loop the next step up,
#: 262k, was slower again.
STRIP_PIXELS = 1 << 17


class _Strip:
    """Scratch planes for one worker, reused from frame to frame."""

    def __init__(self) -> None:
        self.size = 0
        self.f32: list[np.ndarray] = []

    def planes(self, rows: int, cols: int) -> list[np.ndarray]:
        n = rows * cols
        if n > self.size:
            self.size = n
            self.f32 = [np.empty(n, np.float32) for _ in range(6)]
        return [b[:n].reshape(rows, cols) for b in self.f32]


def _saturate(y: list[np.ndarray], x: float, tmp: list[np.ndarray]) -> np.ndarray:
    """Saturation on float planes (0.._SCALE), in place; returns the lightness plane.

    The planes become ``(c − L)·gain``; adding L back is fused with the next step.
    """
    r, g, b = y
    hi, lo, light = tmp
    np.maximum(r, g, out=hi)
    np.maximum(hi, b, out=hi)
    np.minimum(r, g, out=lo)
    np.minimum(lo, b, out=lo)
    cv2.addWeighted(hi, 0.5, lo, 0.5, 0, dst=light)
    gain: np.ndarray | float = 1 + x
    if x >= 0:
        np.subtract(hi, lo, out=hi)                 # chroma
        # HSL saturation is chroma / (2·min(L, 1 − L)); keep it doubled, halve the gain.
        np.subtract(_SCALE, light, out=lo)
        np.minimum(lo, light, out=lo)
        lo += _EPS * _SCALE                         # black and white have chroma 0 too
        np.divide(hi, lo, out=hi)                   # 2·s
        np.maximum(hi, 2 * (1 - x + _EPS), out=hi)
        gain = np.divide(2.0, hi, out=hi)           # 1 / max(s, 1 − x)
    for c in y:
        np.subtract(c, light, out=c)
        np.multiply(c, gain, out=c)
    return light


def _tone_exact(y: np.ndarray, h: float, s: float) -> None:
    """highlight then shadow on a float plane (0.._SCALE in, 0..255 out), in place."""
    np.multiply(y, 1 / _SCALE, out=y)
    np.clip(y, 0, 1, out=y)
    if h:
        np.subtract(1, y, out=y)
        y += _POW_EPS
        cv2.pow(y, 1 + h, y)
        np.clip(y, 0, 1, out=y)
        np.subtract(1, y, out=y)
    if s:
        y += _POW_EPS
        cv2.pow(y, 1 - s, y)
        np.minimum(y, 1, out=y)
    y *= 255


def _lift(planes: list[np.ndarray], alpha: np.ndarray, lift: tuple[float, float], tmp: list[np.ndarray]) -> None:
    """The keep-bright lift on the blended float planes (0..255), in place, as
    :func:`~models.ops.colour_transform.apply_colour_affine` applies its colour map to the uint8 image:
    ``x + α·(clip(x + s, 0, 255) − x)`` with ``s = (c − 1)·Y + 255·d`` shared by the channels."""
    gain, offset = lift
    k = gain - 1
    shift, step = tmp
    cv2.addWeighted(planes[0], k * LUMA[0], planes[1], k * LUMA[1], 255 * offset, dst=shift)
    cv2.scaleAdd(planes[2], k * LUMA[2], shift, dst=shift)
    for p in planes:
        np.add(p, shift, out=step)
        np.clip(step, 0, 255, out=step)
        np.subtract(step, p, out=step)
        np.multiply(step, alpha, out=step)
        np.add(p, step, out=p)


def _run_strip(comp: np.ndarray, alpha: np.ndarray, out: np.ndarray, plan: _Plan,
               scratch: _Strip) -> None:
    rows, cols = alpha.shape
    c8 = cv2.split(comp)
    bufs = scratch.planes(rows, cols)
    y = [cv2.LUT(p, plan.lut[i], dst=bufs[i]) for i, p in enumerate(c8)]
    # Saturation leaves the planes as offsets from the lightness plane, which the next step adds back.
    # A plane of zeros otherwise, not a scalar: OpenCV reads a scalar beside a 1×1 plane as a 4-vector.
    if plan.saturation:
        light = _saturate(y, plan.saturation, bufs[3:])
    else:
        light = bufs[3]
        light.fill(0)
    blended = []
    for i in range(3):
        if plan.tone_exact is not None:
            if plan.saturation:
                np.add(y[i], light, out=y[i])
            _tone_exact(y[i], *plan.tone_exact)
            diff = np.subtract(y[i], c8[i], out=y[i])
        else:
            # Round to the 16-bit index (saturating = clamping to [0, 1]).
            idx = cv2.add(y[i], light, dtype=cv2.CV_16U)
            if plan.tone is None:
                diff = cv2.addWeighted(idx, 255 / _SCALE, c8[i], -1, 0, dtype=cv2.CV_32F)
            else:
                # uint16 indices always fall inside the 65536 entries: "wrap" skips the
                # bounds check, which halves the cost of the gather.
                diff = np.take(plan.tone, idx, out=y[i], mode="wrap")
                np.subtract(diff, c8[i], out=diff)
        np.multiply(diff, alpha, out=diff)
        blended.append(np.add(diff, c8[i], out=diff))
    if plan.lift is not None:
        _lift(blended, alpha, plan.lift, bufs[3:5])  # saturation's scratch is free again
    cv2.merge([cv2.convertScaleAbs(p) for p in blended], dst=out)  # rounds to nearest, saturates


class FilterApplier:
    """Applies the filter chain at full resolution; keeps per-stream scratch and tables.

    ``backend``: "lut" (NumPy/OpenCV, CPU), "torch" (any device; the GPU path) or
    "auto" (lut on CPU, torch elsewhere). ``compile`` tries ``torch.compile`` for
    the torch path and falls back to eager on any failure.
    """

    def __init__(self, device: str | torch.device = "cpu", backend: str = "auto",
                 compile: bool = False, strip_pixels: int = STRIP_PIXELS, workers: int = 1) -> None:
        self.device = torch.device(device)
        if backend == "auto":
            backend = "lut" if self.device.type == "cpu" else "torch"
        if backend not in ("lut", "torch"):
            raise ValueError(f"unknown backend {backend!r}; choose lut, torch or auto")
        if backend == "lut" and self.device.type != "cpu":
            raise ValueError("the lut backend runs on the CPU only")
        self.backend = backend
        self.strip_pixels = strip_pixels
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._scratch = [_Strip() for _ in range(max(1, workers))]
        self._tone_key: tuple[float, float] | None = None
        self._tone: np.ndarray | None = None
        self._tone_exact: tuple[float, float] | None = None
        self._chain = F.apply_filters
        if compile and backend == "torch":
            try:
                self._chain = torch.compile(F.apply_filters, dynamic=False)
            except Exception as exc:  # noqa: BLE001 - compile is an optional speed-up
                log.warning("torch.compile unavailable (%s); using eager filters", exc)

    def __call__(self, composite: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor,
                 args: np.ndarray | torch.Tensor | list[float], strength: float = 1.0,
                 lift: tuple[float, float] | None = None) -> np.ndarray | torch.Tensor:
        """Harmonize ``composite`` (uint8 H×W×3 RGB) inside ``alpha`` (float32 H×W, 0..1).

        ``args`` are the six raw regressor outputs in FILTER_ORDER; ``strength``
        scales them after clamping (0 returns the composite). ``lift``, a keep-bright
        (gain, offset), is applied inside α after the chain; only the CPU path takes it
        (:attr:`fuses_lift`). Returns uint8 H×W×3 of the input's kind (NumPy array or
        tensor on the input's device); a tensor on an accelerator always takes the torch
        path there.
        """
        a = effective_args(args, strength)
        if lift is not None and not self.fuses_lift(composite):
            raise ValueError("only the CPU path applies a lift; apply it after the chain elsewhere")
        if isinstance(composite, torch.Tensor) and composite.ndim == 4:
            return self._apply_frame_tensor(composite, alpha, a)
        on_device = isinstance(composite, torch.Tensor) and composite.device.type != "cpu"
        if self.backend == "torch" or on_device:
            return self._apply_torch(composite, alpha, a)
        if isinstance(composite, torch.Tensor):
            return torch.from_numpy(self(composite.cpu().numpy(), torch.as_tensor(alpha).cpu().numpy(), a))
        composite = np.ascontiguousarray(composite)
        alpha = np.asarray(alpha, dtype=np.float32)
        out = composite.copy()
        if not a.any() and lift is None:
            return out
        # Each strip is trimmed to the box of its own α>0 pixels (a silhouette is narrower at the head).
        boxes = strip_boxes((alpha > 0).view(np.uint8), self.strip_pixels)
        if not boxes:
            return out
        plan = self._plan(composite, a, lift)

        def run(k: int) -> None:
            for box in boxes[k::len(self._scratch)]:
                _run_strip(composite[box], alpha[box], out[box], plan, self._scratch[k])

        if self._pool is None:
            run(0)
        else:
            list(self._pool.map(run, range(len(self._scratch))))
        return out

    def fuses_lift(self, composite: np.ndarray | torch.Tensor) -> bool:
        """Whether a call with this ``composite`` applies a keep-bright lift itself (the CPU path on host arrays)."""
        return self.backend == "lut" and not isinstance(composite, torch.Tensor)

    def _plan(self, composite: np.ndarray, a: np.ndarray, lift: tuple[float, float] | None = None) -> _Plan:
        t, b, c, s, h, sh = (float(v) for v in a)
        h, sh = (round(v / _TONE_STEP) * _TONE_STEP for v in (h, sh))
        if (h, sh) != self._tone_key:
            self._tone_key = (h, sh)
            table = _tone_table(h, sh) if (h or sh) else None
            coarse = table is not None and np.abs(np.diff(table)).max() > _MAX_TONE_STEP
            self._tone = None if coarse else table
            self._tone_exact = (h, sh) if coarse else None
        levels = torch.arange(256, dtype=torch.float64).expand(3, 256) / 255
        lut = ChannelCurves.from_frame(statistics_sample(composite), t, b, c)(levels) * _SCALE
        return _Plan(lut.numpy().astype(np.float32).reshape(3, 1, 256), s, self._tone, self._tone_exact, lift)

    def _chain_safe(self, image: torch.Tensor, args: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        try:
            return self._chain(image, args, mask)
        except Exception as exc:  # noqa: BLE001 - a compiled graph may fail late; eager never needs it
            if self._chain is F.apply_filters:
                raise
            log.warning("compiled filters failed (%s); using eager filters", exc)
            self._chain = F.apply_filters
            return self._chain(image, args, mask)

    def _apply_frame_tensor(self, image: torch.Tensor, alpha: torch.Tensor, a: np.ndarray) -> torch.Tensor:
        """The device pipeline's representation: float 1×3×H×W and 1×1×H×W in, float 1×3×H×W out."""
        if not a.any():
            return image
        args = to_device(a, image.device, image.dtype)[None]
        return self._chain_safe(image, args, alpha.to(image.dtype))

    def _apply_torch(self, composite: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor,
                     a: np.ndarray) -> np.ndarray | torch.Tensor:
        as_numpy = not isinstance(composite, torch.Tensor)
        # A tensor already on an accelerator stays there; anything else goes to self.device.
        device = composite.device if not as_numpy and composite.device.type != "cpu" else self.device
        comp = torch.as_tensor(composite).to(device, non_blocking=True)
        if not a.any():
            return composite.copy() if as_numpy else comp.clone()
        image = comp.permute(2, 0, 1)[None].float().div_(255)
        mask = torch.as_tensor(alpha).to(device, torch.float32)[None, None]
        args = torch.from_numpy(a).to(device)[None]
        state = self._chain_safe(image, args, mask)
        out = _to_uint8(state)[0].permute(1, 2, 0).contiguous()
        return out.cpu().numpy() if as_numpy else out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    return image.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def apply_filters_reference_uint8(composite: np.ndarray, alpha: np.ndarray,
                                  args: np.ndarray | torch.Tensor | list[float], strength: float = 1.0,
                                  device: str | torch.device = "cpu") -> np.ndarray:
    """The official chain (:func:`~models.harmonizers.harmonizer.filters.apply_filters_reference`) on uint8."""
    a = effective_args(args, strength)
    image = torch.from_numpy(np.ascontiguousarray(composite)).to(device).permute(2, 0, 1)[None]
    image = image.float().div_(255).contiguous()
    mask = torch.from_numpy(np.asarray(alpha, dtype=np.float32)).to(device)[None, None]
    state = F.apply_filters_reference(image, torch.from_numpy(a)[None].to(device), mask)
    return _to_uint8(state)[0].permute(1, 2, 0).cpu().numpy()


def apply_filters_fast(composite: np.ndarray, alpha: np.ndarray,
                       args: np.ndarray | torch.Tensor | list[float], strength: float = 1.0,
                       device: str | torch.device = "cpu") -> np.ndarray:
    """One-off convenience around :class:`FilterApplier` (streams should keep an applier)."""
    return FilterApplier(device)(composite, alpha, args, strength)
