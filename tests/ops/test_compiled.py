"""What the compiled per-pixel loops share: each row's span of α > 0, and where the loops are cached."""
from __future__ import annotations

import numpy as np

from models.ops.compiled import alpha_spans, compile_loop


def test_a_rows_span_runs_from_its_first_to_just_past_its_last_pixel_with_alpha():
    rng = np.random.default_rng(0)
    alpha = np.where(rng.random((40, 70)) < 0.05, rng.random((40, 70)), 0).astype(np.float32)
    alpha[7] = 0  # a row of background
    alpha[9, 0] = alpha[9, -1] = 1e-30  # the smallest α still counts
    spans = alpha_spans(alpha)
    assert spans.shape == (40, 2)
    for row, (first, last) in zip(alpha, spans):
        inside = np.flatnonzero(row > 0)
        if inside.size:
            assert (first, last) == (inside[0], inside[-1] + 1)
        else:
            assert first == last
    assert tuple(spans[9]) == (0, 70)


def test_loops_are_cached_in_the_apps_folder():
    import numba

    compile_loop(lambda: None)
    assert numba.config.CACHE_DIR.endswith("numba")
    assert "harmonicam" in numba.config.CACHE_DIR
