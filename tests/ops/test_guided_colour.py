"""The colour-guided fast guided filter against a plain per-window implementation of He et al. Eq. 14–16."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.ops.guided import (fast_guided_filter, fast_guided_filter_colour, fast_guided_filter_colour_tensor)


def reflect_101(n: int, i: int) -> int:
    """The source index of position ``i`` under OpenCV's default border (…2 1 |0 1 2…)."""
    while not 0 <= i < n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def windows(h: int, w: int, r: int):
    """For each pixel, the (rows, cols) of its (2r+1)² window, border reflect-101."""
    for y in range(h):
        for x in range(w):
            rows = [reflect_101(h, y + d) for d in range(-r, r + 1)]
            cols = [reflect_101(w, x + d) for d in range(-r, r + 1)]
            yield y, x, np.ix_(rows, cols)


def reference(rgb: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Straight from the equations, in float64, one window at a time (no subsampling)."""
    image = rgb.astype(np.float64) / 255
    h, w = p.shape
    a = np.zeros((h, w, 3))
    b = np.zeros((h, w))
    for y, x, win in windows(h, w, r):
        colours = image[win].reshape(-1, 3)
        values = p[win].ravel().astype(np.float64)
        mu = colours.mean(0)
        sigma = (colours - mu).T @ (colours - mu) / len(values)  # population covariance, as the box means
        cov_ip = (colours * values[:, None]).mean(0) - mu * values.mean()
        a[y, x] = np.linalg.solve(sigma + eps * np.eye(3), cov_ip)
        b[y, x] = values.mean() - a[y, x] @ mu
    mean_a, mean_b = np.zeros_like(a), np.zeros_like(b)
    for y, x, win in windows(h, w, r):
        mean_a[y, x] = a[win].reshape(-1, 3).mean(0)
        mean_b[y, x] = b[win].mean()
    return np.clip((mean_a * image).sum(-1) + mean_b, 0, 1)


def scene(h=24, w=30, seed=0):
    """Two colours of about the same grey level (blue and a brown) split down the middle, noise, a soft matte."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((h, w, 3), np.float64)
    rgb[:, : w // 2] = (40, 90, 230)
    rgb[:, w // 2:] = (150, 70, 30)  # ITU-R 601 grey 89, the blue's 91
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    p = np.clip(np.linspace(-0.3, 1.3, w)[None].repeat(h, 0) + rng.normal(0, 0.05, (h, w)), 0, 1)
    return rgb, p.astype(np.float32)


@pytest.mark.parametrize("radius, eps", [(1, 1e-3), (3, 1e-2)])
def test_matches_the_per_window_solve(radius, eps):
    rgb, p = scene()
    fast = fast_guided_filter_colour(rgb, p, radius, eps, work_long_side=64)  # no subsampling at this size
    assert np.abs(fast - reference(rgb, p, radius, eps)).max() < 2e-4


def test_tensor_version_matches_host_version_with_subsampling():
    rgb, p = scene(90, 160, seed=1)
    host = fast_guided_filter_colour(rgb, p, 2, 1e-3, work_long_side=80)
    guide = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    device = fast_guided_filter_colour_tensor(guide, torch.from_numpy(p)[None, None], 2, 1e-3, work_long_side=80)
    assert np.abs(device[0, 0].numpy() - host).max() < 2e-3


def test_a_working_copy_is_taken_as_it_is():
    rgb, p = scene(90, 160, seed=2)
    small = p[::2, ::2].copy()  # 80×45: the working copy of 160×90 at long side 80
    out = fast_guided_filter_colour(rgb, small, 2, 1e-3, work_long_side=80)
    assert out.shape == (90, 160)
    with pytest.raises(ValueError, match="working size 80×45"):
        fast_guided_filter_colour(rgb, p[:50, :70].copy(), 2, 1e-3, work_long_side=80)


def test_colour_separates_what_grey_cannot():
    """Blue and brown of the same grey level: only the colour guide puts the matte's edge on the colour edge."""
    rgb, _ = scene(40, 60, seed=3)
    ramp = np.clip((np.arange(60) - 18) / 24, 0, 1).astype(np.float32)[None].repeat(40, 0)  # blurred across x=30
    colour = fast_guided_filter_colour(rgb, ramp, 4, 1e-3, work_long_side=60)
    grey = fast_guided_filter(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255, ramp, 4, 1e-3,
                              work_long_side=60)
    def jump(a):
        return a[:, 30].mean() - a[:, 29].mean()

    # The ramp alone rises 1/24 per column; the colour guide gathers ~5 columns of it onto the edge.
    assert jump(colour) > 0.15 and jump(grey) < 0.06, (jump(colour), jump(grey))


def test_a_smaller_evaluation_copy_stays_close_to_the_full_one_on_both_paths(astronaut):
    rgb = cv2.resize(astronaut, (640, 640), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:80, 0:80]
    p = (np.hypot(xx - 40, yy - 36) < 25).astype(np.float32)  # a working-size decision, 80 px
    full = fast_guided_filter_colour(rgb, p, 2, 1e-3, work_long_side=80)
    half = fast_guided_filter_colour(rgb, p, 2, 1e-3, work_long_side=80, apply_long_side=320)
    assert half.shape == full.shape and np.abs(half - full).mean() < 0.01
    assert np.array_equal(fast_guided_filter_colour(rgb, p, 2, 1e-3, work_long_side=80, apply_long_side=640), full)
    guide = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    device = fast_guided_filter_colour_tensor(guide, torch.from_numpy(p)[None, None], 2, 1e-3, work_long_side=80,
                                              apply_long_side=320)
    assert np.abs(device[0, 0].numpy() - half).mean() < 0.01
