"""The CPU path's per-pixel pass over one box of a frame, compiled with Numba.

What :class:`~models.harmonizers.harmonizer.filter_apply.FilterApplier` leaves for each pixel once
temperature∘brightness∘contrast is a table per channel (values on 0..``SCALE``, see ``filter_apply``):

1. saturation (Ke et al. 2022, the HSL form of ``filters.saturation``), with L = (max + min)/2:
   ``y_c ← L + (y_c − L)·g``, where ``g = 1 + x`` for x < 0 and ``g = 1 / max(S, 1 − x)`` for x > 0
   (S the pixel's HSL saturation, so the gain never pushes a colour past the gamut);
2. the highlight∘shadow tone curve, through its 65536-entry table indexed by the value rounded to
   16 bits, evaluated with ``pow`` instead towards an end where the curve is too steep for the table
   (where no end is, the look-up is a plain gather, which vectorises);
3. the blend with the matte, ``p = c + α·(t − c)`` on 0..255;
4. the keep-bright lift (:mod:`models.harmonizers.keep_bright`), one luma shift shared by the three
   channels, ``p ← p + α·(clip(p + s, 0, 255) − p)`` with ``s = k·Y(p) + d``;
5. rounding to the nearest level, saturated to 0..255.

The arithmetic is the NumPy path's it replaces, in float32 and in the same order. That path made
about sixty passes over float planes of each strip of ~131k pixels, each one out to memory and back;
here each row is done in chunks of ``CHUNK`` pixels that stay in the L1 cache, and every step but the
two table look-ups compiles to 16-wide AVX-512 (8-wide AVX2) instructions. A row is worked only on its span
of α > 0 (:func:`~models.ops.compiled.alpha_spans`; 2-core EPYC, sample clip at 1280×720, with the plain
gather of step 2: 4.1 → 2.7 ms a frame).

The function is compiled on first use (~2 s) and cached (:func:`~models.ops.compiled.compile_loop`), so later
runs load it.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from models.harmonizers.harmonizer import filters
from models.harmonizers.keep_bright import LUMA
from models.ops.compiled import CHUNK, alpha_spans, compile_loop

#: The CPU path carries colour values as floats on 0..SCALE, so the 16-bit rounding that indexes the tone
#: table is a plain saturating conversion.
SCALE = 65535.0
_SCALE = np.float32(SCALE)  # float32 constants: a float64 one would widen the compiled arithmetic
_EPS = filters._EPS  # the filters' own guards against 0/0 and 0**x, so the pass follows their formulas
_POW_EPS = np.float32(filters._POW_EPS)
_L0, _L1, _L2 = (np.float32(w) for w in LUMA)


def _chain_box(comp: np.ndarray, alpha: np.ndarray, spans: np.ndarray, out: np.ndarray, r0: int, r1: int,
               c0: int, c1: int, lut: np.ndarray, sat: float, tone: np.ndarray, toned: bool, tone_lo: int,
               tone_hi: int, highlight: float, shadow: float, lift_k: float,
               lift_d: float) -> None:  # pragma: no cover - compiled
    """Steps 1–5 of the module's docstring on rows r0..r1, columns c0..c1 of ``comp`` (uint8 H×W×3),
    ``alpha`` (float32 H×W), written into ``out`` (uint8 H×W×3), which holds the composite already: only each
    row's span of α > 0 (``spans``, :func:`~models.ops.compiled.alpha_spans`) is written. ``lut``: 3×256
    float32 on 0..65535; ``tone``: 65536 float32 on 0..255 when ``toned``, read at indices
    ``tone_lo``..``tone_hi`` (outside them the curve of ``highlight`` and ``shadow`` is evaluated); ``lift_k``,
    ``lift_d``: the lift's k = gain − 1 and d = 255·offset (0, 0: no lift)."""
    half, zero, one, top = np.float32(0.5), np.float32(0.0), np.float32(1.0), np.float32(255.0)
    sat = np.float32(sat)
    floor = np.float32(2 * (1 - sat + _EPS))  # HSL saturation kept doubled, as 2·max(S, 1 − x)
    eps = np.float32(_EPS * _SCALE)  # black and white have chroma 0 too
    desaturate = np.float32(1 + sat)
    to_levels = np.float32(255.0) / _SCALE
    hi_exp, sh_exp = np.float32(1 + highlight), np.float32(1 - shadow)  # the tone curve's exponents
    k, d = np.float32(lift_k), np.float32(lift_d)
    lifted = k != 0 or d != 0
    whole = tone_lo <= 0 and tone_hi >= 65535
    f0, f1, f2 = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32)
    y0, y1, y2 = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32)
    i0, i1, i2 = np.empty(CHUNK, np.int32), np.empty(CHUNK, np.int32), np.empty(CHUNK, np.int32)
    lut0, lut1, lut2 = lut[0], lut[1], lut[2]
    for r in range(r0, r1):
        first, last = max(c0, spans[r, 0]), min(c1, spans[r, 1])
        for s in range(first, last, CHUNK):
            n = min(CHUNK, last - s)
            c, a, o = comp[r, s:s + n], alpha[r, s:s + n], out[r, s:s + n]
            for j in range(n):
                f0[j], f1[j], f2[j] = c[j, 0], c[j, 1], c[j, 2]
                y0[j], y1[j], y2[j] = lut0[c[j, 0]], lut1[c[j, 1]], lut2[c[j, 2]]
            if sat > 0:
                for j in range(n):
                    hi, lo = max(y0[j], max(y1[j], y2[j])), min(y0[j], min(y1[j], y2[j]))
                    light = half * hi + half * lo
                    g = np.float32(2.0) / max((hi - lo) / (min(_SCALE - light, light) + eps), floor)
                    y0[j], y1[j], y2[j] = light + (y0[j] - light) * g, light + (y1[j] - light) * g, light + (y2[j] - light) * g
            elif sat < 0:
                for j in range(n):
                    hi, lo = max(y0[j], max(y1[j], y2[j])), min(y0[j], min(y1[j], y2[j]))
                    light = half * hi + half * lo
                    g = desaturate
                    y0[j], y1[j], y2[j] = light + (y0[j] - light) * g, light + (y1[j] - light) * g, light + (y2[j] - light) * g
            for y, i in ((y0, i0), (y1, i1), (y2, i2)):
                for j in range(n):  # the 16-bit index, rounded to nearest and saturated
                    i[j] = np.int32(min(max(np.rint(y[j]), zero), _SCALE))
                if not toned:
                    for j in range(n):
                        y[j] = i[j] * to_levels
                    continue
                if whole:  # no steep end: a plain gather, which vectorises
                    for j in range(n):
                        y[j] = tone[i[j]]
                    continue
                for j in range(n):
                    if tone_lo <= i[j] <= tone_hi:
                        y[j] = tone[i[j]]
                        continue
                    # Where the curve is too steep for the table: highlight, then shadow, as in ``filters``.
                    v = min(max(y[j] / _SCALE, zero), one)
                    if highlight != 0:
                        v = one - min(max((one - v + _POW_EPS) ** hi_exp, zero), one)
                    if shadow != 0:
                        v = min((v + _POW_EPS) ** sh_exp, one)
                    y[j] = v * top
            for j in range(n):  # the blend, on 0..255
                aj = a[j]
                y0[j], y1[j], y2[j] = f0[j] + (y0[j] - f0[j]) * aj, f1[j] + (y1[j] - f1[j]) * aj, f2[j] + (y2[j] - f2[j]) * aj
            if lifted:
                for j in range(n):
                    aj, p0, p1, p2 = a[j], y0[j], y1[j], y2[j]
                    shift = k * (_L0 * p0 + _L1 * p1 + _L2 * p2) + d
                    y0[j] = p0 + (min(max(p0 + shift, zero), top) - p0) * aj
                    y1[j] = p1 + (min(max(p1 + shift, zero), top) - p1) * aj
                    y2[j] = p2 + (min(max(p2 + shift, zero), top) - p2) * aj
            for j in range(n):
                o[j, 0] = np.uint8(min(max(np.rint(y0[j]), zero), top))
                o[j, 1] = np.uint8(min(max(np.rint(y1[j]), zero), top))
                o[j, 2] = np.uint8(min(max(np.rint(y2[j]), zero), top))


@functools.cache
def compiled_chain() -> Callable[..., None]:
    """:func:`_chain_box` compiled for the types :func:`_call` passes (on the first call of the process, or
    loaded from the cache)."""
    chain = compile_loop(_chain_box)
    pixel, alpha = np.zeros((1, 1, 3), np.uint8), np.ones((1, 1), np.float32)
    _call(chain, pixel, alpha, alpha_spans(alpha), pixel.copy(), (slice(0, 1), slice(0, 1)),
          np.zeros((3, 256), np.float32), 0.0, None, (0, 65535), (0.0, 0.0), (1.0, 0.0))
    return chain


def run_chain(comp: np.ndarray, alpha: np.ndarray, spans: np.ndarray, out: np.ndarray, box: tuple[slice, slice],
              lut: np.ndarray, saturation: float, tone: np.ndarray | None, tone_range: tuple[int, int],
              tone_args: tuple[float, float], lift: tuple[float, float]) -> None:
    """Steps 1–5 on ``box`` of the frame (see :func:`_chain_box`; ``spans``: ``alpha``'s
    :func:`~models.ops.compiled.alpha_spans`). ``tone`` None: no tone curve; ``lift``: the keep-bright (gain,
    offset), (1, 0) for none."""
    _call(compiled_chain(), comp, alpha, spans, out, box, lut, saturation, tone, tone_range, tone_args, lift)


def _call(chain: Callable[..., None], comp: np.ndarray, alpha: np.ndarray, spans: np.ndarray, out: np.ndarray,
          box: tuple[slice, slice], lut: np.ndarray, saturation: float, tone: np.ndarray | None,
          tone_range: tuple[int, int], tone_args: tuple[float, float], lift: tuple[float, float]) -> None:
    """``chain`` with :func:`run_chain`'s arguments, every scalar as the one type it is compiled for."""
    rows, cols = box
    chain(comp, alpha, spans, out, rows.start, rows.stop, cols.start, cols.stop, lut, float(saturation),
          _NO_TONE if tone is None else tone, tone is not None, int(tone_range[0]), int(tone_range[1]),
          float(tone_args[0]), float(tone_args[1]), float(lift[0]) - 1, 255 * float(lift[1]))


#: Stands in for the tone table where there is none (the compiled pass takes an array of one type).
_NO_TONE = np.zeros(1, np.float32)
