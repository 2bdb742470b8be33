"""The region decision on the working copy: solid inside, nothing weak glued on, soft edges after feathering."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from models.frame import Frame
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.matting.solidify import drop_islands, solidify

H, W = 180, 320


def person(value: float = 1.0) -> np.ndarray:
    """A head-and-shoulders blob at ``value`` with a soft 3-px ramp, on a 320×180 working copy."""
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (160, 60), 30, 1, -1)
    cv2.rectangle(mask, (100, 95), (220, 179), 1, -1)
    cv2.rectangle(mask, (145, 80), (175, 100), 1, -1)
    return (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.2) * value).astype(np.float32)


def test_holes_inside_the_person_are_filled():
    alpha = person()
    alpha[120:126, 150:158] = 0.1  # a see-through pocket
    out = solidify(alpha)
    assert (out[120:126, 150:158] == 1).all()


def test_a_thin_weak_protrusion_goes_and_a_thin_confident_one_stays():
    alpha = person()
    alpha[20:95, 126:129] = 0.6   # a weak pole, 3 px wide, glued along the side of the head
    alpha[100:140, 60:63] = 1.0   # a confident finger, 3 px wide, from the shoulder
    alpha[100:103, 60:100] = 1.0
    out = solidify(alpha)
    assert out[20:50, 126:128].max() == 0 and out[80:95, 126:129].max() == 0
    assert (out[105:135, 61] > 0.9).all()


def glued_strip_scene(strip_colour):
    """A person in black (sure, α 1, x ≥ 130) on dark blue, with a weak black band (α 0.6, 4 px) along its
    side and a strip of ``strip_colour`` outside it whose model α falls off across its width, as a pole's
    does (0.55 on its inner half, 0.4 on its outer one). Band and inner half are 5 px farther than one
    pixel from the sure part, as wide as the opening, so the thin-structure rule alone keeps both."""
    alpha = np.zeros((H, W), np.float32)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (14, 14, 50)                 # the dark blue room
    alpha[:, 130:] = 1.0
    rgb[:, 130:] = (20, 12, 10)             # the black coat
    alpha[20:95, 126:130] = 0.6             # the weak band beside it
    rgb[20:95, 126:130] = (20, 12, 10)
    alpha[20:95, 124:126] = 0.55            # the strip outside the band: its inner half…
    alpha[20:95, 122:124] = 0.4             # …and its outer half, below the boundary
    rgb[20:95, 122:126] = strip_colour
    return alpha, rgb


def test_a_weak_strip_of_a_colour_the_person_does_not_have_goes():
    alpha, rgb = glued_strip_scene((190, 130, 50))      # a gold pole
    assert solidify(alpha)[40:80, 124:126].min() > 0.5  # the opening alone keeps it
    out = solidify(alpha, rgb)
    assert out[40:80, 124:126].max() == 0
    assert out[40:80, 127:130].min() > 0.5              # the band is the person's colour: it stays


def test_a_weak_edge_of_the_person_s_own_colour_stays():
    alpha, rgb = glued_strip_scene((24, 14, 12))        # the cap band's black, one shade off
    assert np.array_equal(solidify(alpha, rgb), solidify(alpha))


def test_a_half_transparent_region_inside_the_person_becomes_opaque():
    alpha = person()
    alpha[40:70, 140:180] *= np.random.default_rng(0).uniform(0.5, 0.9, (30, 40)).astype(np.float32)  # the cap
    out = solidify(alpha)
    assert (out[42:68, 142:178] == 1).all()


def test_islands_are_dropped():
    alpha = person()
    alpha[10:16, 280:286] = 0.95  # a flag star
    assert solidify(alpha)[10:16, 280:286].max() == 0
    assert drop_islands(alpha)[12, 282] == 0


def test_edges_stay_soft_after_colour_feathering(astronaut):
    """A real photo: the decided matte is near-binary, but the colour-guided result has soft edges."""
    rgb = cv2.resize(astronaut, (640, 640), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((640, 640), np.float32)
    cv2.ellipse(alpha, (250, 330), (190, 330), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4)
    out = MattePostprocess(MatteOptions(smoothing_s=0, solidify=True, refine=True))(Frame(rgb, 0, 0.0), Matte(alpha)).alpha
    edge = cv2.morphologyEx((alpha > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((9, 9), np.uint8)) > 0
    soft = (out[edge] > 0.05) & (out[edge] < 0.95)
    assert soft.mean() > 0.3, soft.mean()


def test_the_tensor_path_agrees_with_the_host_path():
    rng = np.random.default_rng(1)
    alpha = person()
    alpha[20:95, 118:121] = 0.6
    alpha[120:126, 150:158] = 0.1
    rgb = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    big = cv2.resize(alpha, (1280, 720), interpolation=cv2.INTER_LINEAR)
    host = MattePostprocess(MatteOptions(smoothing_s=0.1, solidify=True, refine=True))
    device = MattePostprocess(MatteOptions(smoothing_s=0.1, solidify=True, refine=True))
    for i in range(2):
        frame = Frame(rgb, i, i / 30)
        a = host(frame, Matte(big)).alpha
        pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        b = device(Frame(rgb, i, i / 30, pixels), Matte(torch.from_numpy(big)[None, None])).alpha[0, 0].numpy()
        assert np.abs(a - b).mean() < 2e-3 and np.abs(a - b).max() < 0.05


def test_the_ema_state_is_untouched():
    alpha = cv2.resize(person(0.7), (640, 360), interpolation=cv2.INTER_LINEAR)
    rgb = np.full((360, 640, 3), 128, np.uint8)
    post = MattePostprocess(MatteOptions(smoothing_s=0.5, solidify=True, refine=True))
    post(Frame(rgb, 0, 0.0), Matte(alpha))
    state = post._ema.value.copy()
    post._ema._t = 0.0  # the same instant again: the state must come back as it was
    out = post(Frame(rgb, 1, 0.0), Matte(alpha)).alpha
    assert np.array_equal(post._ema.value, state) and out is not post._ema.value
    assert out.max() == 1.0 and state.max() < 0.71  # solidified output, raw state


def test_the_previous_decision_holds_what_the_model_still_half_believes():
    alpha = person()
    alpha[25:45, 140:180] = 0.3   # the top of the head, believed at 0.3 in this frame only
    held = solidify(person()) > 0.5
    assert solidify(alpha)[37:45, 152:168].max() < 0.5              # alone, it is not the person
    assert solidify(alpha, held=held)[37:45, 152:168].min() > 0.99   # held from the frame before
    alpha[25:45, 140:180] = 0.1   # below HOLD: the model has let go, and so does the decision
    assert solidify(alpha, held=held)[37:45, 152:168].max() < 0.5


def test_only_a_following_frame_is_held():
    rgb = np.full((H, W, 3), 90, np.uint8)
    weak = person()
    weak[25:45, 140:180] = 0.3
    post = MattePostprocess(MatteOptions(smoothing_s=0, refine=False, solidify=True))
    post(Frame(rgb, 0, 0.0), Matte(person()))
    assert post(Frame(rgb, 1, 1 / 30), Matte(weak)).alpha[35, 160] > 0.99   # the next frame: held
    post(Frame(rgb, 0, 0.0), Matte(person()))
    assert post(Frame(rgb, 0, 0.0), Matte(weak)).alpha[35, 160] < 0.5       # a still again: not held
    post(Frame(rgb, 5, 5 / 30), Matte(person()))
    post.reset()
    assert post(Frame(rgb, 6, 6 / 30), Matte(weak)).alpha[35, 160] < 0.5    # after a reset: not held
