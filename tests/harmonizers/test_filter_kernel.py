"""The compiled per-pixel pass of the CPU filter path, against the filters' own formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.harmonizer.filter_apply import _MAX_TONE_STEP, _table_range, _tone_table
from models.harmonizers.harmonizer.filter_kernel import run_chain
from models.ops.compiled import alpha_spans
from models.harmonizers.keep_bright import LUMA


def every_colour_step(step: int = 17) -> np.ndarray:
    """An image of every colour on a grid of ``step`` levels (uint8, 1×N×3)."""
    levels = np.arange(0, 256, step, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], axis=-1).reshape(1, -1, 3)


def expected(comp: np.ndarray, alpha: np.ndarray, gains: np.ndarray, sat: float, h: float, s: float,
             lift: tuple[float, float]) -> np.ndarray:
    """Steps 1–5 of ``filter_kernel`` in float64 from ``filters``: a per-channel gain as the table, then
    saturation, highlight, shadow, the blend, the lift on luma."""
    image = torch.from_numpy(comp.astype(np.float64) / 255).permute(2, 0, 1)[None]
    state = (image * torch.from_numpy(gains).view(1, 3, 1, 1)).clamp(0, 1)
    for name, x in (("saturation", sat), ("highlight", h), ("shadow", s)):
        if x:
            state = F.apply_filter(name, state, x)
    a = torch.from_numpy(alpha.astype(np.float64))[None, None]
    blended = (state * a + image * (1 - a))[0].permute(1, 2, 0).numpy() * 255
    shift = (lift[0] - 1) * (blended @ np.array(LUMA)) + 255 * lift[1]
    lifted = blended + alpha[..., None] * (np.clip(blended + shift[..., None], 0, 255) - blended)
    return lifted


NORMAL = (1.1, 0.95, 0.9)
#: Every level lands within 20 of the 65535 steps above black, where a shadow exponent of 0.4 makes the curve
#: rise by ~3 levels a step: only ``pow`` there stays within a level.
NEAR_BLACK = (3e-4, 2e-4, 1e-4)


@pytest.mark.parametrize("gains, sat, h, s, lift", [
    (NORMAL, 0.4, 0.2, -0.3, (1.2, 0.03)),     # saturation capped at the gamut, both tone curves, a lift
    (NORMAL, -0.5, 0.0, 0.0, (1.0, 0.0)),      # desaturation alone: no table read
    (NORMAL, 0.6, -0.6, 0.6, (1.0, 0.0)),      # tone curves vertical at both ends
    (NEAR_BLACK, 0.0, 0.0, 0.6, (1.0, 0.0)),   # ... and every value at the steep end of the shadow curve
    (NORMAL, 0.8, 0.5, 0.0, (0.8, -0.05)),     # a lift that darkens
])
def test_the_pass_follows_the_filters_formulas_on_every_colour(gains, sat, h, s, lift):
    comp = every_colour_step()
    alpha = np.linspace(0, 1, comp.shape[1], dtype=np.float32)[None]
    alpha[0, -40:] = alpha[0, 1000:1040] = 0  # background at the row's end and within it
    gains = np.array(gains)
    lut = np.ascontiguousarray(np.clip(np.arange(256) / 255 * gains[:, None], 0, 1) * 65535, dtype=np.float32)
    tone = _tone_table(h, s) if (h or s) else None
    tone_range = (0, 65535) if tone is None else _table_range(tone)
    out = comp.copy()  # as the applier hands it over: the pass writes only where α > 0 may change a pixel
    run_chain(comp, alpha, alpha_spans(alpha), out, (slice(0, 1), slice(0, comp.shape[1])), lut, sat, tone, tone_range,
              (h, s), lift)
    want = expected(comp, alpha, gains, sat, h, s, lift)
    # 16-bit rounding and the table's steps (at most half a level) before the final rounding
    assert np.abs(out - want).max() <= 1.0
    assert np.array_equal(out[alpha == 0], comp[alpha == 0])  # α = 0 keeps the composite


def test_the_pass_writes_only_on_each_rows_span_of_alpha():
    comp = np.tile(np.array([120, 100, 80], np.uint8), (1, 600, 1))  # a muted colour, which saturation changes
    alpha = np.zeros((1, 600), np.float32)
    alpha[0, 100:200] = alpha[0, 300:400] = 1
    out = np.full_like(comp, 7)
    lut = np.ascontiguousarray(np.tile(np.arange(256) / 255 * 65535, (3, 1)), dtype=np.float32)
    run_chain(comp, alpha, alpha_spans(alpha), out, (slice(0, 1), slice(0, 600)), lut, 0.5, None, (0, 65535),
              (0.0, 0.0), (1.0, 0.0))
    assert (out[0, :100] == 7).all() and (out[0, 400:] == 7).all()  # outside the span: not written
    assert np.array_equal(out[0, 200:300], comp[0, 200:300])  # α = 0 within it: the composite
    # the person saturated: L = 100, S = 40 / (2·100) = 0.2, gain 1 / max(S, 1 − 0.5) = 2 about L
    assert (out[0, 100:200] == (140, 100, 60)).all() and (out[0, 300:400] == (140, 100, 60)).all()


def test_only_the_steep_ends_of_a_tone_table_are_left_to_pow():
    steep = _tone_table(-0.9, 0.9)
    lo, hi = _table_range(steep)
    assert 0 < lo < hi < 65535
    assert np.abs(np.diff(steep[lo - 1:hi + 2])).max() <= _MAX_TONE_STEP
    assert np.abs(np.diff(steep[lo - 2:lo])).max() > _MAX_TONE_STEP  # the step just below lo is too steep
    assert np.abs(np.diff(steep[hi + 1:hi + 3])).max() > _MAX_TONE_STEP  # and the one just above hi
    assert _table_range(_tone_table(0.3, -0.3)) == (0, 65535)  # exponents above 1: no steep end


def test_without_numba_the_cpu_runs_the_filters_in_torch(monkeypatch):
    from models.harmonizers.harmonizer import filter_apply
    from models.harmonizers.harmonizer.filter_apply import FilterApplier, apply_filters_reference_uint8

    monkeypatch.setattr(filter_apply, "compiler_installed", lambda: False)
    applier = FilterApplier()
    comp = np.ascontiguousarray(every_colour_step().reshape(64, 64, 3))
    alpha = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    assert applier.backend == "torch" and not applier.fuses_lift(comp)  # the lift then runs as its own pass
    args = (0.1, 0.2, -0.1, 0.3, 0.2, -0.2)
    ref = apply_filters_reference_uint8(comp, alpha, args)
    assert np.abs(applier(comp, alpha, args).astype(np.int16) - ref).max() <= 1
    with pytest.raises(ValueError, match="needs numba"):
        FilterApplier(backend="lut")
