"""The benchmark's side-by-side timing of the fused filters against the official-style reference."""
from __future__ import annotations

from app.commands.filter_timing import time_filter_paths


def test_timing_helper_reports_medians_and_agreement():
    result = time_filter_paths(96, 64, "cpu", repeats=2, reference_repeats=1)
    assert set(result) == {"fast_ms", "reference_ms", "speedup", "max_abs_diff"}
    assert result["fast_ms"] > 0 and result["max_abs_diff"] <= 1
