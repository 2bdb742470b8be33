"""Post-processing that does no harm: decisions among unsure pixels, and the guard of sure ones."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.frame import Frame
from models.matting.base import Matte
from models.matting.confidence import (CLEAR_BACKGROUND, CLEAR_PERSON, SURE_BACKGROUND, SURE_PERSON, changed_box,
                                       close_unsure_holes, close_unsure_holes_tensor, drop_unsure_islands,
                                       drop_unsure_islands_tensor, guard, guard_tensor, keep_sides, keep_sides_tensor,
                                       nearest_part, sure_masks, sure_masks_tensor)
from models.matting.postprocess import MatteOptions, MattePostprocess


def body(h: int = 180, w: int = 320) -> np.ndarray:
    """A sure person: an ellipse at α 0.97 with a soft one-pixel edge."""
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h), (w // 5, h * 3 // 4), 0, 0, 360, 0.97, -1)
    return cv2.GaussianBlur(alpha, (3, 3), 0)


def test_an_unsure_island_goes_and_a_sure_one_stays():
    alpha = body()
    alpha[20:26, 20:26] = 0.7   # unsure blob far from the person
    alpha[20:26, 280:286] = 0.95  # a sure one (a raised hand the model is certain of)
    out = drop_unsure_islands(alpha)
    assert out[20:26, 20:26].max() == 0
    assert out[22, 282] == np.float32(0.95)
    assert np.array_equal(out[100:], alpha[100:])


def test_a_pocket_of_doubt_closes_and_a_hole_showing_background_stays_open():
    alpha = body()
    alpha[100:104, 150:154] = 0.3   # unsure pocket: the model never says background there
    alpha[100:104, 170:174] = 0.3
    alpha[101, 171] = 0.05          # background seen through
    out = close_unsure_holes(alpha)
    assert out[100:104, 150:154].min() == 1.0
    assert out[100:104, 170:174].max() <= 0.3


def test_nothing_to_decide_returns_the_same_array():
    alpha = body()
    assert drop_unsure_islands(alpha) is alpha
    assert close_unsure_holes(alpha) is alpha


def test_the_guard_restores_sure_pixels_beyond_the_rim_and_frees_the_rim():
    model = body()
    person, background = sure_masks(model)
    assert person.sum() < (model >= 0.9).sum() and background.sum() < (model <= 0.1).sum()  # the rim is free
    refined = np.full_like(model, 0.5)  # a refinement that went wrong everywhere
    out = guard(refined.copy(), model, (person, background))
    assert np.array_equal(out[person], model[person])
    assert np.array_equal(out[background], model[background])
    free = ~person & ~background
    assert np.all(out[free] == 0.5)


def test_the_tensor_guard_agrees_with_the_host_guard():
    model = body()
    refined = cv2.GaussianBlur(model, (9, 9), 0) * np.float32(0.9)
    small = cv2.resize(model, (160, 90), interpolation=cv2.INTER_AREA)
    host = guard(refined.copy(), model, sure_masks(small))
    sure = sure_masks_tensor(torch.from_numpy(small)[None, None])
    device = guard_tensor(torch.from_numpy(refined)[None, None], torch.from_numpy(model)[None, None], sure)
    assert np.array_equal(device[0, 0].numpy(), host)


def test_a_guard_in_the_changed_box_is_the_guard_of_the_whole_frame():
    model = cv2.resize(body(), (1280, 720), interpolation=cv2.INTER_LINEAR)
    change = np.zeros((180, 320), np.float32)
    change[40:47, 100:109] = -0.6  # a decision: some of the person taken back
    change[150:152, 10:12] = 0.4
    decided = np.clip(model + cv2.resize(change, (1280, 720), interpolation=cv2.INTER_LINEAR), 0, 1)
    box = changed_box(change, model.shape)
    outside = np.ones(model.shape, bool)
    outside[box] = False
    assert np.array_equal(decided[outside], model[outside])  # the box holds every pixel the change reached
    sure = sure_masks(cv2.resize(model, (320, 180), interpolation=cv2.INTER_AREA))
    assert np.array_equal(guard(decided.copy(), model, sure, box), guard(decided.copy(), model, sure))
    assert changed_box(np.zeros_like(change), model.shape) is None


def test_a_part_of_a_mask_enlarged_by_nearest_neighbour_is_opencvs():
    mask = np.random.default_rng(1).random((180, 320)) > 0.5
    whole = cv2.resize(mask.view(np.uint8), (1280, 720), interpolation=cv2.INTER_NEAREST).view(bool)
    box = slice(37, 401), slice(5, 999)
    assert np.array_equal(nearest_part(mask, (720, 1280), box), whole[box])


@pytest.mark.parametrize("sure", [(SURE_BACKGROUND, SURE_PERSON), (CLEAR_BACKGROUND, CLEAR_PERSON)])
def test_keep_sides_is_the_clamp_by_the_raw_answers_side(sure):
    background, person = (np.float32(v) for v in sure)
    rng = np.random.default_rng(2)
    raw = rng.random((90, 160), dtype=np.float32)
    raw[:5] = person  # exactly at the thresholds, which count as sure
    raw[5:10] = background
    alpha = rng.random((90, 160), dtype=np.float32)
    expected = np.where((raw >= person) & (alpha <= 0.5), np.nextafter(np.float32(0.5), 1), alpha)
    expected = np.where((raw <= background) & (expected >= 0.5), np.nextafter(np.float32(0.5), 0), expected)
    args = () if sure == (SURE_BACKGROUND, SURE_PERSON) else (sure,)
    assert np.array_equal(keep_sides(alpha.copy(), raw, *args), expected)
    device = keep_sides_tensor(torch.from_numpy(alpha)[None, None], torch.from_numpy(raw)[None, None], *args)
    assert np.array_equal(device[0, 0].numpy(), expected)


def decided_on_both_sides(alpha: np.ndarray) -> None:
    """Each decision gives the same working copy on the host and (CPU tensors) on the device path."""
    t = torch.from_numpy(alpha)[None, None]
    for host, device in ((drop_unsure_islands, drop_unsure_islands_tensor),
                         (close_unsure_holes, close_unsure_holes_tensor)):
        assert np.array_equal(device(t)[0, 0].numpy(), host(alpha)), host.__name__
    for host, device in zip(sure_masks(alpha), sure_masks_tensor(t)):
        assert np.array_equal(device[0, 0].numpy(), host)


def test_the_device_decisions_are_the_host_decisions_on_made_cases():
    alpha = body()
    alpha[20:26, 20:26] = 0.7
    alpha[20:26, 280:286] = 0.95
    alpha[100:104, 150:154] = 0.3
    alpha[100:104, 170:174] = 0.3
    alpha[101, 171] = 0.05
    alpha[0:3, 100:104] = 0.6      # an island on the border
    alpha[140:150, 10:12] = 0.3    # an unsure hole would be open: it is not enclosed by the person
    decided_on_both_sides(alpha)
    decided_on_both_sides(np.zeros((90, 160), np.float32))
    decided_on_both_sides(np.full((90, 160), 0.97, np.float32))


def test_the_device_decisions_are_the_host_decisions_on_real_mattes(sample_clip):
    from models.matting.mediapipe_selfie import MediaPipeSelfie
    from models.matting.solidify import WORK_LONG_SIDE
    from models.ops.sizes import fit_long_side

    capture = cv2.VideoCapture(str(sample_clip))
    matting = MediaPipeSelfie()
    try:
        for index in range(24):
            ok, bgr = capture.read()
            assert ok
            if index % 6:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            alpha = matting.matte(Frame(rgb, index, index / 30)).alpha
            h, w = alpha.shape
            decided_on_both_sides(cv2.resize(alpha, fit_long_side(w, h, WORK_LONG_SIDE), interpolation=cv2.INTER_AREA))
    finally:
        matting.close()
        capture.release()


def test_the_default_never_overturns_a_sure_model_beyond_the_rim(astronaut):
    """Whatever the colour guide suggests, a sure person stays the person and a sure background stays
    background, except on the thin rim along the outline."""
    rgb = cv2.resize(astronaut, (320, 320))
    model = np.zeros((320, 320), np.float32)
    model[60:, 80:240] = 1.0          # a box that ignores the picture's edges entirely
    person, background = sure_masks(model)  # the working copy is the frame itself at 320 px
    # Without the face guard, which raises the astronaut's face above the box on purpose.
    out = MattePostprocess(MatteOptions(smoothing_s=0, refine=True, faces=False))(Frame(rgb, 0, 0.0), Matte(model)).alpha
    assert out[person].min() == 1.0 and out[background].max() == 0.0
    # Without the guard the colour-guided filter moves the box's edge into the picture's colours.
    free = MattePostprocess(MatteOptions(smoothing_s=0, refine=True, guard=False, faces=False))(Frame(rgb, 0, 0.0), Matte(model)).alpha
    assert free[person].min() < 0.99 or free[background].max() > 0.01


def test_what_the_decisions_change_never_turns_a_sure_answer_over():
    """A pocket of doubt closed on the 320-pixel working copy also covers the few full-resolution pixels
    inside it that the model is sure are background; they stay background, frame after frame."""
    rgb = np.full((720, 1280, 3), 128, np.uint8)
    raw = np.zeros((720, 1280), np.float32)
    raw[100:700, 400:900] = 0.95
    raw[300:332, 600:632] = 0.4   # a pocket of doubt: 8×8 working pixels
    raw[314:318, 614:618] = 0.0   # with a speck of sure background inside it
    post = MattePostprocess(MatteOptions(faces=False, hands=False))
    for i in range(3):
        out = post(Frame(rgb, i, i / 30), Matte(raw)).alpha
        assert (out[raw >= SURE_PERSON] > 0.5).all() and (out[raw <= SURE_BACKGROUND] < 0.5).all()
    pocket = out[300:332, 600:632][raw[300:332, 600:632] > SURE_BACKGROUND]
    assert (pocket > 0.5).all()  # closed around the speck


def test_a_face_stays_the_person_where_the_model_loses_it(astronaut):
    """The face guard: the astronaut's face, which the model here drops entirely, is the person again;
    the background around the face stays background."""
    rgb = cv2.resize(astronaut, (320, 320))
    model = np.zeros((320, 320), np.float32)
    out = MattePostprocess(MatteOptions(smoothing_s=0))(Frame(rgb, 0, 0.0), Matte(model)).alpha
    assert (out > 0.99).sum() > 0.02 * out.size          # a face's worth of pixels
    ys, xs = np.nonzero(out > 0.5)
    assert 100 < xs.mean() < 220 and ys.mean() < 160      # where the face is (upper middle)
    assert out[:, :60].max() == 0 and out[250:].max() == 0  # nothing raised away from it
    off = MattePostprocess(MatteOptions(smoothing_s=0, faces=False, hands=False))(Frame(rgb, 0, 0.0), Matte(model))
    assert off.alpha.max() == 0
