"""Smoothing in time: the motion-following EMA against its formula, on host arrays and tensors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.ops.temporal import TimeEMA, ema_weight, follow_share


def test_follow_share_is_a_clipped_ramp():
    change = np.array([0.0, 2.0, 5.0, 8.0, 20.0], np.float32)
    assert np.allclose(follow_share(change, 2.0, 8.0), [0, 0, 0.5, 1, 1])
    assert torch.allclose(follow_share(torch.from_numpy(change), 2.0, 8.0), torch.tensor([0, 0, 0.5, 1, 1.0]))


def test_a_follow_map_takes_moving_pixels_at_once_and_smooths_still_ones():
    ema = TimeEMA(0.1)
    ema.update(np.zeros((4, 6), np.float32), 0.0)
    follow = np.zeros((4, 6), np.float32)
    follow[:, 3:] = 1.0      # the right half moved
    follow[:, 2] = 0.5
    out = ema.update(np.ones((4, 6), np.float32), 1 / 30, follow)
    w = 1 - math.exp(-(1 / 30) / 0.1)
    assert w == pytest.approx(ema_weight(1 / 30, 0.1))
    assert np.allclose(out[:, :2], w) and np.allclose(out[:, 3:], 1.0)
    assert np.allclose(out[:, 2], w + (1 - w) * 0.5)


def test_a_small_follow_map_is_enlarged_and_the_tensor_path_agrees():
    sample = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    follow = np.random.default_rng(1).random((4, 6), dtype=np.float32)
    host, device = TimeEMA(0.05), TimeEMA(0.05)
    host.update(np.zeros((8, 12), np.float32), 0.0)
    device.update(torch.zeros(1, 1, 8, 12), 0.0)
    a = host.update(sample, 0.04, follow)
    b = device.update(torch.from_numpy(sample)[None, None], 0.04, torch.from_numpy(follow)[None, None])
    assert np.allclose(a, b[0, 0].numpy(), atol=1e-5)
    w = ema_weight(0.04, 0.05)
    assert w * sample.min() - 1e-6 <= a.min() and a.max() <= sample.max() + 1e-6
