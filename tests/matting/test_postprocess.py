"""Matte post-processing: time-constant smoothing and guided refinement keep alpha soft."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from models.frame import Frame
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.guided import fast_guided_filter
from models.ops.temporal import TimeEMA, ema_weight, follows


def step_response(fps: float, seconds: float, tau: float) -> float:
    ema = TimeEMA(tau)
    ema.update(np.zeros(1, np.float32), 0.0)
    n = round(seconds * fps)
    for i in range(1, n + 1):
        value = ema.update(np.ones(1, np.float32), i / fps)
    return float(value[0])


def test_ema_is_frame_rate_independent():
    at15, at30, at60 = (step_response(fps, 1.0, tau=0.5) for fps in (15, 30, 60))
    assert at15 == pytest.approx(at30, abs=1e-5) == pytest.approx(at60, abs=1e-5)
    assert at30 == pytest.approx(1 - np.exp(-2), abs=1e-5)


def test_ema_weight_limits():
    assert ema_weight(0.1, 0.0) == 1.0           # no smoothing
    assert ema_weight(0.0, 1.0) == 0.0           # same instant: nothing new
    assert 0 < ema_weight(1 / 30, 1.0) < 0.05


def test_a_frame_follows_an_earlier_one_of_its_stream_within_a_few_frames_at_the_same_size():
    last = (10, 1.0, (180, 320))
    assert follows(11, 1.04, (180, 320), last, 2) and follows(12, 1.07, (180, 320), last, 2)
    assert not follows(13, 1.1, (180, 320), last, 2)   # too far on: a seek, or frames lost
    assert not follows(10, 1.0, (180, 320), last, 2)   # the same index again: a still
    assert not follows(9, 0.96, (180, 320), last, 2)   # backwards
    assert not follows(11, 1.04, (90, 160), last, 2)   # another size
    assert not follows(11, 1.04, (180, 320), None, 2)  # nothing before it
    assert not follows(11, 31.0, (180, 320), last, 2)  # the next frame read, after a pause: judged by time


def test_after_a_pause_nothing_from_before_it_is_carried_over():
    """A paused camera's next frame has the next index but comes minutes later: the person decided before
    the pause is not held (the post-processing answers as for a fresh stream)."""
    rgb = np.full((90, 160, 3), 120, np.uint8)
    before, after = np.zeros((90, 160), np.float32), np.zeros((90, 160), np.float32)
    before[20:80, 50:110] = 1.0   # the person, sure
    after[20:80, 50:110] = 0.3    # the model half believes it
    options = MatteOptions(smoothing_s=0, solidify=True, faces=False, hands=False)
    paused = MattePostprocess(options)
    paused(Frame(rgb, 0, 0.0), Matte(before))
    resumed = paused(Frame(rgb, 1, 90.0), Matte(after)).alpha
    fresh = MattePostprocess(options)(Frame(rgb, 1, 90.0), Matte(after)).alpha
    np.testing.assert_array_equal(resumed, fresh)
    held = MattePostprocess(options)  # without a pause the person is held: the check above can fail
    held(Frame(rgb, 0, 0.0), Matte(before))
    assert held(Frame(rgb, 1, 1 / 30), Matte(after)).alpha.max() > fresh.max()


def test_ema_restarts_on_shape_change_and_reset():
    ema = TimeEMA(1.0)
    ema.update(np.zeros((2, 2), np.float32), 0.0)
    assert ema.update(np.ones((3, 3), np.float32), 0.1).mean() == 1.0
    ema.reset()
    assert ema.update(np.full((3, 3), 0.5, np.float32), 0.2).mean() == 0.5


def test_guided_filter_snaps_a_blurry_matte_to_image_edges():
    guide = np.zeros((120, 160), np.float32)
    guide[:, 80:] = 1.0                                   # a sharp vertical edge
    ramp = np.clip((np.arange(160) - 60) / 40, 0, 1).astype(np.float32)
    matte = np.repeat(ramp[None], 120, axis=0)            # a matte blurred across it
    refined = fast_guided_filter(guide, matte, radius=4, eps=1e-4, work_long_side=160)
    def jump_at_edge(a):
        return a[:, 80].mean() - a[:, 79].mean()

    assert jump_at_edge(refined) > jump_at_edge(matte) + 0.05
    assert refined.min() >= 0 and refined.max() <= 1


@pytest.mark.parametrize("device", [False, True])
def test_smoothing_keeps_the_side_of_a_model_that_is_clearly_one_way(device):
    rgb = np.full((90, 160, 3), 128, np.uint8)  # a still frame: the EMA follows at its time constant
    post = MattePostprocess(MatteOptions(smoothing_s=0.2, islands=False, close_unsure=False, guard=False,
                                         faces=False, hands=False))
    free = MattePostprocess(replace(post.options, smoothing_sides=None))
    as_input = (lambda a: torch.from_numpy(a)[None, None]) if device else (lambda a: a)
    for p in (post, free):
        p(Frame(rgb, 0, 0.0), Matte(as_input(np.zeros((90, 160), np.float32))))
    raw = np.zeros((90, 160), np.float32)
    raw[:, :40], raw[:, 40:80], raw[:, 80:120] = 0.75, 0.65, 0.35  # then clearly person, less clearly, unsure
    kept, smoothed = ((lambda a: a[0, 0].numpy() if device else a)(p(Frame(rgb, 1, 1 / 30), Matte(as_input(raw))).alpha)
                      for p in (post, free))
    assert (smoothed < 0.2).all()  # the EMA alone trails the model on every pixel
    assert (kept[:, :40] > 0.5).all() and (kept[:, :40] < 0.51).all()  # just over the model's side
    assert np.array_equal(kept[:, 40:], smoothed[:, 40:])  # inside the unsure band the EMA decides
    state = post._ema.value
    assert (np.asarray(state[0, 0] if device else state)[:, :40] < 0.2).all()  # the EMA's state is never written


def test_postprocess_keeps_alpha_soft_and_resets():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    # A ramp over noise is no person: the region decision (solidify) would make it a step.
    post = MattePostprocess(MatteOptions(smoothing_s=0.2, solidify=False))
    soft = np.tile(np.linspace(0, 1, 160, dtype=np.float32), (90, 1))
    out = post(Frame(rgb, 0, 0.0), Matte(soft)).alpha
    assert ((out > 0.1) & (out < 0.9)).mean() > 0.3
    zeros = post(Frame(rgb, 1, 1 / 30), Matte(np.zeros_like(soft))).alpha
    assert zeros.mean() > 0.3  # smoothed towards the previous matte
    post.reset()
    fresh = post(Frame(rgb, 2, 2 / 30), Matte(np.zeros_like(soft))).alpha
    assert fresh.max() < 0.05


def test_a_coarse_matte_is_post_processed_at_its_size_and_handed_on_at_the_frames():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
    coarse = np.zeros((90, 160), np.float32)
    coarse[20:80, 50:110] = 0.95  # a sure person
    post = MattePostprocess(MatteOptions(faces=False, hands=False))
    out = post(Frame(rgb, 0, 0.0), Matte(coarse)).alpha
    assert out.shape == (180, 320)
    at_coarse = MattePostprocess(MatteOptions(faces=False, hands=False))(Frame(rgb[::2, ::2].copy(), 0, 0.0),
                                                                       Matte(coarse)).alpha
    expected = cv2.resize(at_coarse, (320, 180), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out, expected, atol=1e-6)  # the same steps, enlarged once at the end
    assert (out[50:150, 110:210] > 0.9).all() and (out[:, :90] == 0).all()
    # The region decision and the refinement take the matte enlarged first; they answer at the frame's size too.
    solid = MattePostprocess(MatteOptions(faces=False, hands=False, solidify=True, refine=True))
    assert solid(Frame(rgb, 0, 0.0), Matte(coarse)).alpha.shape == (180, 320)
