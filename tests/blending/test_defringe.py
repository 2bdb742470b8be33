"""``defringe``: the old background's colour leaves the edges, stray matte islands go."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import registry
from models.blending.defringe import drop_islands, estimate_foreground
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.frame import Frame
from models.matting.base import Matte
from models.stream import StreamState
from tests.blending.interior import linear_outside_the_band

RED, GREEN, BLUE = (220, 40, 40), (30, 200, 60), (40, 60, 220)


def scene(w=320, h=180):
    """A red disc with a soft 12-px rim filmed in front of a green room: frame, alpha, true foreground."""
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - w / 2, yy - h / 2)
    alpha = np.clip((60 - dist) / 12 + 0.5, 0, 1).astype(np.float32)
    fg = np.empty((h, w, 3), np.float32)
    fg[...] = RED
    rgb = (alpha[..., None] * fg + (1 - alpha[..., None]) * np.array(GREEN, np.float32)).round().astype(np.uint8)
    return rgb, alpha, fg


def test_foreground_estimate_removes_the_old_background_from_the_rim():
    rgb, alpha, fg = scene()
    rim = (alpha > 0.1) & (alpha < 0.9)
    estimated = estimate_foreground(rgb, alpha).astype(np.float32)
    before = np.abs(rgb[rim].astype(np.float32) - fg[rim]).mean()
    after = np.abs(estimated[rim] - fg[rim]).mean()
    assert after < 0.3 * before, (before, after)
    inside = alpha == 1
    assert np.array_equal(estimated[inside], rgb[inside])  # the person's own pixels are kept


@pytest.mark.parametrize("tensor", [False, True])
def test_outside_the_mixed_band_the_camera_pixels_are_blended_linearly(tensor):
    """A face whose matte is a little below 1 keeps its own pixels; the rim still loses the old room."""
    image, linear, band = linear_outside_the_band(registry.create("blend", "defringe"), tensor)
    assert (image[band] != linear[band]).any()


def test_defringe_beats_linear_on_the_rim_over_a_new_background():
    rgb, alpha, fg = scene()
    new_bg = np.empty_like(rgb)
    new_bg[...] = BLUE
    truth = alpha[..., None] * fg + (1 - alpha[..., None]) * new_bg
    rim = (alpha > 0.05) & (alpha < 0.95)
    errors = {}
    for name in ("linear", "defringe"):
        out = registry.create("blend", name).blend(Frame(rgb, 0, 0.0), Matte(alpha), new_bg, StreamState()).image
        errors[name] = np.abs(out[rim].astype(np.float32) - truth[rim]).mean()
    assert errors["defringe"] < 0.5 * errors["linear"], errors


def test_small_islands_are_dropped_and_the_person_kept():
    alpha = np.zeros((180, 320), np.float32)
    alpha[40:170, 100:200] = 1.0      # the person
    alpha[10:20, 260:270] = 0.9       # a flag star stuck in the matte
    cleaned = drop_islands(alpha)
    assert cleaned[15, 265] == 0 and (cleaned[50:160, 110:190] == 1).all()
    person_only = np.zeros_like(alpha)
    person_only[40:170, 100:200] = 1.0
    assert drop_islands(person_only) is person_only  # nothing to drop: untouched


def test_a_matte_the_post_processing_decided_is_taken_as_it_is():
    """Its islands are gone already (models.matting.confidence): no second search on either path."""
    rgb, alpha, _ = scene()
    alpha[10:20, 260:270] = 0.9  # left there on purpose: a decided matte is trusted
    bg = np.full_like(rgb, 0)
    blend = registry.create("blend", "defringe")
    assert blend.blend(Frame(rgb, 0, 0.0), Matte(alpha, decided=True), bg, StreamState()).alpha[15, 265] == 0.9
    assert blend.blend(Frame(rgb, 0, 0.0), Matte(alpha), bg, StreamState()).alpha[15, 265] == 0
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    device = blend.blend(Frame(rgb, 0, 0.0, t), Matte(torch.from_numpy(alpha)[None, None], decided=True),
                         torch.zeros_like(t), StreamState())
    assert abs(float(device.alpha[0, 0, 15, 265]) - 0.9) < 1e-6
    post = MattePostprocess()
    assert post(Frame(rgb, 0, 0.0), Matte(alpha)).decided
    assert not MattePostprocess(MatteOptions(islands=False))(Frame(rgb, 0, 0.0), Matte(alpha)).decided


def test_the_tensor_path_matches_the_host_path():
    rgb, alpha, _ = scene()
    alpha[10:20, 260:270] = 0.9
    bg = np.empty_like(rgb)
    bg[...] = BLUE
    blend = registry.create("blend", "defringe")
    host = blend.blend(Frame(rgb, 0, 0.0), Matte(alpha), bg, StreamState())
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    device = blend.blend(Frame(rgb, 0, 0.0, t(rgb)), Matte(torch.from_numpy(alpha)[None, None]), t(bg),
                         StreamState())
    out = (device.image[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(out - host.image).mean() < 1.0 and np.abs(out - host.image).max() <= 12
    assert float(device.alpha[0, 0, 15, 265]) == 0.0


def test_a_predicted_foreground_colour_is_used_as_it_is():
    rgb, alpha, fg = scene()
    fgr = fg.round().astype(np.uint8)
    composite = registry.create("blend", "defringe").blend(Frame(rgb, 0, 0.0), Matte(alpha, fgr), rgb, StreamState())
    assert composite.foreground is fgr
