"""Linear blending: the uint8 fast path equals α·F + (1−α)·B."""
from __future__ import annotations

import numpy as np
import torch

from models import registry
from models.blending.linear import blend_linear_torch


def test_uint8_fast_path_matches_the_formula():
    rng = np.random.default_rng(1)
    fg = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    alpha = rng.random((37, 53), dtype=np.float32)
    out = registry.create("blend", "linear").composite(fg, alpha, bg)
    ref = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    assert out.dtype == np.uint8 and out.shape == fg.shape
    assert np.abs(out.astype(float) - ref).max() <= 1.0


def test_foreground_colour_replaces_the_frame():
    frame = np.zeros((4, 4, 3), np.uint8)
    fgr = np.full((4, 4, 3), 200, np.uint8)
    bg = np.full((4, 4, 3), 100, np.uint8)
    out = registry.create("blend", "linear").composite(frame, np.ones((4, 4), np.float32), bg, foreground=fgr)
    assert (out == 200).all()


def test_torch_path_matches_numpy():
    rng = np.random.default_rng(2)
    fg, bg = rng.random((2, 1, 3, 8, 8), dtype=np.float32)
    a = rng.random((1, 1, 8, 8), dtype=np.float32)
    out = blend_linear_torch(torch.from_numpy(fg), torch.from_numpy(a), torch.from_numpy(bg)).numpy()
    np.testing.assert_allclose(out, a * fg + (1 - a) * bg, atol=1e-6)
