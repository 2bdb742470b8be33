"""Per-pixel loops compiled with Numba: how they are compiled and cached, and what they share.

The CPU path's passes over the person (the linear blend, the harmonizer's filter chain) are loops over
pixels that Numba compiles to vector instructions. Each works a row only from its first to its last
pixel with α > 0 (:func:`alpha_spans`): a box around a silhouette is about a third background, and
beyond those pixels neither pass changes anything.

Numba is a dependency. A machine set up by hand without it (the GPU check's image, which carries only
what the device path needs) takes each caller's uncompiled path (:func:`compiler_installed`).
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Callable

import numpy as np

from models.paths import cache_dir

#: Pixels of a row a loop works together: its float32 scratch rows of this length stay in the L1 cache.
CHUNK = 512


@functools.cache
def compiler_installed() -> bool:
    """Whether Numba is installed (asked once: the blend asks every frame, and without Numba each look is a
    search of the import path)."""
    return importlib.util.find_spec("numba") is not None


def compile_loop(loop: Callable[..., None]) -> Callable[..., None]:
    """``loop`` compiled on its first call, or loaded from the app's cache folder (unless ``NUMBA_CACHE_DIR``
    names another). It releases the GIL, so the frame loop's other half runs meanwhile; bounds checks and
    Python's division errors are off, since either keeps a loop from vectorising."""
    import numba

    if not numba.config.CACHE_DIR:  # the app's own folder, not a __pycache__ beside the module
        numba.config.CACHE_DIR = str(cache_dir() / "numba")
    return numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")(loop)


def _alpha_spans(alpha: np.ndarray, spans: np.ndarray) -> None:  # pragma: no cover - compiled
    zero = np.float32(0.0)
    h, w = alpha.shape
    for r in range(h):
        first, last = 0, w
        while first < last and alpha[r, first] <= zero:
            first += 1
        while last > first and alpha[r, last - 1] <= zero:
            last -= 1
        spans[r, 0], spans[r, 1] = first, last


@functools.cache
def _spans_loop() -> Callable[..., None]:
    return compile_loop(_alpha_spans)


def alpha_spans(alpha: np.ndarray) -> np.ndarray:
    """For each row of ``alpha`` (float32 H×W), the columns from its first pixel with α > 0 to just past its
    last one (the same column twice on a row without one), as int64 H×2."""
    spans = np.empty((alpha.shape[0], 2), np.int64)
    _spans_loop()(np.ascontiguousarray(alpha, dtype=np.float32), spans)
    return spans
