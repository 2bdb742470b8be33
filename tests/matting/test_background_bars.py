"""Background bars: a straight thin structure that runs from the clear background into the person's edge
is taken away whatever its colour and the model's confidence; the person's own edges are not bars."""
from __future__ import annotations

import cv2
import numpy as np

from models.frame import Frame
from models.matting.background_bars import background_bars, bar_polygons
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.matting.solidify import solidify
from models.ops.tensor_image import alpha_tensor, upload

H, W = 180, 320
ROOM, SKIN, GOLD = (14, 14, 50), (200, 140, 70), (190, 130, 50)  # skin and gold: 24 levels apart


def head_scene(bar_rows=(0, 150), glued_rows=(40, 80)):
    """A skin-coloured head and shoulders (α 1) in a dark room, and a gold pole 3 px wide (x 125–127)
    down ``bar_rows`` that passes a pixel from the head's left side; the model believes the pole
    (α 0.95, the gap to the head included) along ``glued_rows``."""
    body = np.zeros((H, W), np.uint8)
    cv2.circle(body, (160, 60), 31, 1, -1)
    cv2.rectangle(body, (100, 100), (220, 179), 1, -1)
    cv2.rectangle(body, (145, 80), (175, 100), 1, -1)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = ROOM
    rgb[bar_rows[0]:bar_rows[1], 125:128] = GOLD
    rgb[body.astype(bool)] = SKIN
    alpha = cv2.GaussianBlur(body.astype(np.float32), (0, 0), 1.0)
    glued = alpha[glued_rows[0]:glued_rows[1], 125:131]
    np.maximum(glued, 0.95, out=glued)  # pole and gap, up to the head
    return alpha, rgb, body.astype(bool)


def test_a_pole_glued_to_the_head_is_a_bar_and_the_head_is_not():
    alpha, rgb, body = head_scene()
    bars = background_bars(alpha, rgb)
    assert bars is not None
    assert bars[45:75, 125:128].mean() > 0.9   # the glued part, though the model is sure of it
    assert not bars[body].any()                # the head's own edge is not a bar


def test_solidify_and_the_feathering_take_the_whole_bar_away():
    alpha, rgb, body = head_scene()
    assert solidify(alpha, rgb)[45:75, 126].min() > 0.9  # neither the opening nor the colour test removes it
    out = MattePostprocess(MatteOptions(smoothing_s=0, solidify=True, refine=True))(Frame(rgb, 0, 0.0), Matte(alpha))
    assert out.alpha[45:75, 125:128].max() < 0.05
    assert out.alpha[50:70, 140:175].min() > 0.99          # the head stays whole
    assert out.excluded is not None and out.excluded[45:75, 125:128].all() and not out.excluded[body].any()


def test_the_device_path_excludes_the_same_pixels():
    alpha, rgb, _ = head_scene()
    post = MattePostprocess(MatteOptions(smoothing_s=0, solidify=True, refine=True))
    host = post(Frame(rgb, 0, 0.0), Matte(alpha))
    device = post(Frame(rgb, 0, 0.0, pixels=upload(rgb, "cpu")), Matte(alpha_tensor(alpha, "cpu")))
    assert np.array_equal(device.excluded[0, 0].numpy(), host.excluded)
    assert np.abs(device.alpha[0, 0].numpy() - host.alpha).max() < 0.02


def test_without_a_bar_the_matte_carries_no_exclusion():
    alpha, rgb, _ = head_scene(bar_rows=(0, 0), glued_rows=(0, 0))
    assert background_bars(alpha, rgb) is None
    assert MattePostprocess(MatteOptions(smoothing_s=0, solidify=True, refine=True))(Frame(rgb, 0, 0.0), Matte(alpha)).excluded is None


def test_a_bar_that_hardly_leaves_the_person_is_not_taken():
    """A crease along the jaw and the jaw's edge make a bar that is clear of the body for a few pixels
    at most. So is a pole that begins just above the head: 11 of its 30 px are clear, over a third of
    its length but under the 13 px a bar needs in the clear, and it stays."""
    alpha, rgb, _ = head_scene(bar_rows=(26, 56), glued_rows=(40, 56))  # 11 px of 30 clear
    assert background_bars(alpha, rgb) is None


def test_a_bar_far_from_the_person_is_left_alone():
    alpha, rgb, _ = head_scene(glued_rows=(0, 0))
    rgb[:, 125:128] = ROOM
    rgb[0:150, 40:43] = GOLD  # a pole in the room, 57 px from the shoulders
    assert background_bars(alpha, rgb) is None


def test_bars_are_pairs_of_close_antiparallel_edges():
    down = [100.0, 10.0, 100.0, 90.0]
    up_beside = [103.0, 85.0, 103.0, 20.0]
    assert len(bar_polygons(np.array([down, up_beside], np.float32), 320)) == 2  # each long side sweeps to the other
    corners = bar_polygons(np.array([down, up_beside], np.float32), 320)[0]
    assert np.allclose(corners[:, 0], [100, 100, 103, 103])
    down_beside = [103.0, 20.0, 103.0, 85.0]  # same polarity: a step, not a bar
    assert len(bar_polygons(np.array([down, down_beside], np.float32), 320)) == 0
    up_far = [112.0, 85.0, 112.0, 20.0]       # 12 px apart: wider than a bar
    assert len(bar_polygons(np.array([down, up_far], np.float32), 320)) == 0
    up_elsewhere = [103.0, 160.0, 103.0, 120.0]  # beside the line but not along the segment
    assert len(bar_polygons(np.array([down, up_elsewhere], np.float32), 320)) == 0


def test_a_stream_searches_every_few_frames_and_a_still_every_time(monkeypatch):
    import models.matting.background_bars as module

    searched = []
    monkeypatch.setattr(module, "background_bars", lambda alpha, rgb: searched.append(alpha.shape) or alpha > 2)
    bars = module.StreamBars(every=3)
    alpha, rgb, _ = head_scene()
    for index in range(7):
        bars(index, index / 30, alpha, rgb)
    assert len(searched) == 3                       # frames 0, 3 and 6
    for _ in range(2):
        bars(0, 0.0, alpha, rgb)                    # stills all say frame 0: each is searched
    bars(1, 1 / 30, alpha[:90], rgb[:90])           # the next frame, but another size
    bars(2, 60.0, alpha[:90], rgb[:90])             # the next frame, but after a minute's pause
    assert len(searched) == 7
    bars.reset()
    bars(3, 60.1, alpha[:90], rgb[:90])
    assert len(searched) == 8


def test_tiny_frames_have_no_bars():
    for h, w in ((4, 4), (5, 320), (320, 5)):
        alpha = np.ones((h, w), np.float32)
        assert background_bars(alpha, np.zeros((h, w, 3), np.uint8)) is None
