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

CPU path ("lut"): the T∘B∘C tables and the tone table are built here, per frame (the tone table only
when the highlight or shadow argument moves by a step); the per-pixel rest — saturation, the tone curve
through its 65536-entry table indexed by the 16-bit rounded value, the blend with α and the keep-bright
lift when one is given (:mod:`models.harmonizers.keep_bright`) — is one compiled pass
(:mod:`models.harmonizers.harmonizer.filter_kernel`) over the rows of the person, each row on its own span
of α > 0 (:func:`~models.ops.compiled.alpha_spans`). The lift is one luma gain and offset,
so it costs one shift per pixel shared by the three channels instead of a second pass over the frame.
Where the tone curve is too steep for its table (an exponent below ~0.56 makes it vertical at one end:
a highlight argument below ~-0.44 or a shadow argument above ~0.44) the values at that end are
evaluated with ``pow`` instead.

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

import functools
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.harmonizer.filter_kernel import SCALE, compiled_chain, run_chain
from models.ops.compiled import alpha_spans, compiler_installed
from models.ops.tensor_image import to_device

log = logging.getLogger(__name__)

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

    lut: np.ndarray                      # 3×256 float32, T∘B∘C on 0..SCALE
    saturation: float                    # 0: skipped
    tone: np.ndarray | None              # 65536 float32, 255·(shadow∘highlight)(k/65535); None: identity
    tone_args: tuple[float, float]       # (highlight, shadow) of that curve
    tone_range: tuple[int, int]          # the indices where the table is fine enough; pow outside them
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


@functools.lru_cache(maxsize=16)
def _gain_and_factor(b: float, c: float) -> tuple[float, float]:
    """Brightness's gain and contrast's factor for the arguments ``b`` and ``c``, from float32 as the torch
    chain computes them. Kept: the arguments stay the same from one prediction to the next, a few frames."""
    return float(F.brightness_gain(torch.tensor(b)).double()), float(F.contrast_factor(torch.tensor(c)).double())


@dataclass
class ChannelCurves:
    """Temperature∘brightness∘contrast with the frame's statistics frozen: a per-channel map.

    ``gains`` are temperature's per-channel gains (from the frame's channel means),
    ``beta`` brightness's gain, ``pivot`` contrast's whole-frame mean after the first
    two filters and ``k`` its factor, all in float64.
    """

    gains: np.ndarray
    beta: float
    pivot: float
    k: float

    @classmethod
    def from_frame(cls, composite: np.ndarray, t: float, b: float, c: float) -> ChannelCurves:
        """Statistics of ``composite`` (uint8 H×W×3), exact, without a histogram.

        Temperature's means are ``cv2.mean`` of the frame. After temperature (gain k_c)
        and brightness (gain β) a channel is ``min(β·k_c·u, min(β, 1))`` (a negative k_c
        zeroes it), so contrast's pivot is an exact clipped mean.
        """
        # Gains come from float32 arguments in float32, as the torch chain computes them.
        gains = np.ones(3)
        if t:
            means = torch.tensor(cv2.mean(composite)[:3], dtype=torch.float32) / 255
            gains = F.temperature_gains(means.view(1, 3, 1, 1), torch.tensor(t).view(1, 1, 1, 1)).double().view(3)
            gains = gains.numpy()
        beta, k = _gain_and_factor(b, c)
        pivot = 0.0
        if c:
            pivot = float(_mean_clipped(composite, gains * beta, min(beta, 1.0)).mean())
        return cls(gains, beta, pivot, k)

    def __call__(self, rgb: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Map float64 values in [0,1] shaped (3, ...) channel by channel: a NumPy array (the CPU path's
        per-frame tables, without torch's per-call overhead) or a CPU tensor, with the same arithmetic."""
        gains = self.gains.reshape((3,) + (1,) * (rgb.ndim - 1))
        if isinstance(rgb, torch.Tensor):
            gains = torch.from_numpy(gains)
        out = (rgb * gains).clip(0, 1)
        out = (out * self.beta).clip(0, 1)
        return (out + (out - self.pivot) * self.k).clip(0, 1)


#: The 256 levels of each channel on [0, 1], where the CPU path's per-channel tables are read.
_LEVELS = np.repeat(np.arange(256, dtype=np.float64)[None] / 255, 3, axis=0)


def _tone_table(h: float, s: float) -> np.ndarray:
    grid = torch.arange(65536, dtype=torch.float32).view(1, 1, 1, -1) / SCALE
    curve = F.apply_filter("shadow", F.apply_filter("highlight", grid, h), s)
    return (curve.flatten() * 255).numpy()


def _table_range(table: np.ndarray) -> tuple[int, int]:
    """The indices lo..hi whose both neighbouring steps in ``table`` are at most ``_MAX_TONE_STEP``.

    A tone curve with an exponent below 1 is vertical at one end (highlight's towards 1, shadow's towards
    0), so its steep steps lie towards the ends; every step beyond the last steep one below the middle
    and before the first one above it is fine."""
    steep = np.flatnonzero(np.abs(np.diff(table)) > _MAX_TONE_STEP)
    middle = len(table) // 2
    lower, upper = steep[steep < middle], steep[steep >= middle]
    return (int(lower.max()) + 2 if lower.size else 0), (int(upper.min()) - 1 if upper.size else len(table) - 1)


def _run_box(comp: np.ndarray, alpha: np.ndarray, spans: np.ndarray, out: np.ndarray, box: tuple[slice, slice],
             plan: _Plan) -> None:
    run_chain(comp, alpha, spans, out, box, plan.lut, plan.saturation, plan.tone, plan.tone_range, plan.tone_args,
              (1.0, 0.0) if plan.lift is None else plan.lift)


class FilterApplier:
    """Applies the filter chain at full resolution; keeps per-stream tables.

    ``backend``: "lut" (tables and the compiled pass, CPU), "torch" (any device; the GPU path) or
    "auto" (lut on CPU, torch elsewhere and where numba is not installed). ``compile`` tries ``torch.compile`` for
    the torch path and falls back to eager on any failure.
    """

    def __init__(self, device: str | torch.device = "cpu", backend: str = "auto",
                 compile: bool = False, workers: int = 1) -> None:
        self.device = torch.device(device)
        if backend == "auto":
            backend = "lut" if self.device.type == "cpu" and compiler_installed() else "torch"
        if backend not in ("lut", "torch"):
            raise ValueError(f"unknown backend {backend!r}; choose lut, torch or auto")
        if backend == "lut" and self.device.type != "cpu":
            raise ValueError("the lut backend runs on the CPU only")
        if backend == "lut" and not compiler_installed():
            raise ValueError("the lut backend needs numba, which is not installed; install it (pip install numba) "
                             "or use the torch backend")
        self.backend = backend
        if backend == "lut":
            compiled_chain()  # compiled or loaded now, not on the first frame
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._tone_key: tuple[float, float] | None = None
        self._tone: np.ndarray | None = None
        self._tone_range = (0, 65535)
        self._chain = F.apply_filters
        if compile and backend == "torch":
            try:
                self._chain = torch.compile(F.apply_filters, dynamic=False)
            except Exception as exc:  # noqa: BLE001 - compile is an optional speed-up
                log.warning("torch.compile unavailable (%s); using eager filters", exc)

    def __call__(self, composite: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor,
                 args: np.ndarray | torch.Tensor | list[float], strength: float = 1.0,
                 lift: tuple[float, float] | None = None,
                 spans: np.ndarray | None = None) -> np.ndarray | torch.Tensor:
        """Harmonize ``composite`` (uint8 H×W×3 RGB) inside ``alpha`` (float32 H×W, 0..1).

        ``args`` are the six raw regressor outputs in FILTER_ORDER; ``strength``
        scales them after clamping (0 returns the composite). ``lift``, a keep-bright
        (gain, offset), is applied inside α after the chain; only the CPU path takes it
        (:attr:`fuses_lift`). ``spans``: α's :func:`~models.ops.compiled.alpha_spans` where the
        caller has them (the CPU path scans α for them otherwise). Returns uint8 H×W×3 of the
        input's kind (NumPy array or tensor on the input's device); a tensor on an accelerator
        always takes the torch path there.
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
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
        out = composite.copy()
        if not a.any() and lift is None:
            return out
        spans = alpha_spans(alpha) if spans is None else spans
        rows = np.flatnonzero(spans[:, 1] > spans[:, 0])
        if not rows.size:
            return out
        plan = self._plan(composite, a, lift)
        # The rows from the person's first to last, one band per worker; the pass reads each row's own span.
        edges = np.linspace(rows[0], rows[-1] + 1, self.workers + 1).round().astype(int)
        bands = [(slice(r0, r1), slice(0, alpha.shape[1])) for r0, r1 in zip(edges[:-1], edges[1:]) if r1 > r0]

        def run(band: tuple[slice, slice]) -> None:
            _run_box(composite, alpha, spans, out, band, plan)

        if self._pool is None:
            run(bands[0])
        else:
            list(self._pool.map(run, bands))
        return out

    def fuses_lift(self, composite: np.ndarray | torch.Tensor) -> bool:
        """Whether a call with this ``composite`` applies a keep-bright lift itself (the CPU path on host arrays)."""
        return self.backend == "lut" and not isinstance(composite, torch.Tensor)

    def _plan(self, composite: np.ndarray, a: np.ndarray, lift: tuple[float, float] | None = None) -> _Plan:
        t, b, c, s, h, sh = (float(v) for v in a)
        h, sh = (round(v / _TONE_STEP) * _TONE_STEP for v in (h, sh))
        if (h, sh) != self._tone_key:
            self._tone_key = (h, sh)
            self._tone = _tone_table(h, sh) if (h or sh) else None
            self._tone_range = (0, 65535) if self._tone is None else _table_range(self._tone)
        lut = ChannelCurves.from_frame(statistics_sample(composite), t, b, c)(_LEVELS) * SCALE
        return _Plan(np.ascontiguousarray(lut, dtype=np.float32), s, self._tone, (h, sh), self._tone_range, lift)

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
