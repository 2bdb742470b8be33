"""The shared real-time machinery: fitted colour maps, image-to-image harmonizers, the Reinhard baseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.realtime import ImageToImageHarmonizer
from models.ops.colour_transform import apply_colour_affine, fit_colour_affine, identity_affine
from models.stream import StreamState

KNOWN = np.array([[0.9, 0.05, 0.0, 0.04],
                  [0.02, 0.8, 0.1, -0.03],
                  [0.0, 0.1, 1.1, 0.02]], np.float32)


def mapped(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """An independent per-pixel y = A·x + b on float RGB in [0,1] (NumPy matmul, no OpenCV)."""
    return np.clip(rgb @ m[:, :3].T + m[:, 3], 0, 1)


def test_fit_recovers_a_known_colour_map():
    rng = np.random.default_rng(0)
    source = rng.random((64, 64, 3), dtype=np.float32)
    mask = (rng.random((64, 64)) > 0.3).astype(np.float32)
    source *= 0.85  # keep the mapped colours inside [0,1], where the map is exactly affine
    fitted = fit_colour_affine(source, mapped(source, KNOWN), mask)
    np.testing.assert_allclose(fitted.reshape(3, 4), KNOWN, atol=3e-3)


def test_fit_of_an_unchanged_image_is_the_identity_and_ridge_holds_undetermined_terms():
    rng = np.random.default_rng(1)
    source = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.ones((32, 32), np.float32)
    np.testing.assert_allclose(fit_colour_affine(source, source, mask), identity_affine(), atol=1e-6)
    flat = np.full((32, 32, 3), 100, np.uint8)  # one colour fixes no cross-channel terms
    brighter = np.full((32, 32, 3), 120, np.uint8)
    fitted = fit_colour_affine(flat, brighter, mask).reshape(3, 4)
    out = fitted[:, :3] @ np.full(3, 100 / 255) + fitted[:, 3]
    np.testing.assert_allclose(out, 120 / 255, atol=2e-3)  # the colour itself is matched
    assert np.abs(fitted[:, :3] - np.eye(3)).max() < 0.2  # and the matrix stays near the identity


def test_apply_matches_the_formula_inside_alpha_and_keeps_the_rest():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    alpha = np.zeros((30, 40), np.float32)
    alpha[5:25, 10:30] = rng.random((20, 20), dtype=np.float32)
    transform = KNOWN.reshape(12).copy()
    out = apply_colour_affine(image, alpha, transform)
    assert np.array_equal(transform, KNOWN.reshape(12))  # the caller's transform (the smoothed state) is untouched
    expected = alpha[..., None] * mapped(image / 255, KNOWN) * 255 + (1 - alpha[..., None]) * image
    assert np.abs(out.astype(float) - expected).max() <= 1.01
    assert np.array_equal(out[alpha == 0], image[alpha == 0])
    tensor = apply_colour_affine(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
                                 torch.from_numpy(alpha)[None, None], KNOWN.reshape(12))
    assert np.abs(tensor[0].permute(1, 2, 0).numpy() * 255 - expected).max() < 1e-3


class KnownMapNetwork(ImageToImageHarmonizer):
    """An "image-to-image network" whose output is a known colour map of its input."""

    def predict_image(self, inputs, cache):
        return (mapped(inputs.composite.astype(np.float32) / 255, KNOWN) * 255).round().astype(np.uint8)


def person(size=(320, 180), shift=0):
    w, h = size
    rng = np.random.default_rng(4)
    rgb = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[40:160, 100 + shift:200 + shift] = 1.0
    return rgb, alpha


def test_image_to_image_output_becomes_a_map_applied_to_the_current_frame():
    h = KnownMapNetwork(device="cpu")
    h.keep_bright = False  # the map alone (its lift: test_keep_bright)
    state = StreamState(live=False)
    rgb, alpha = person()
    h.harmonize(Composite(rgb, alpha, rgb), rgb, Frame(rgb, 0, 0.0), state)
    np.testing.assert_allclose(h.current_transform(state).reshape(3, 4), KNOWN, atol=0.01)
    # the person moved before the next prediction: the map follows the current alpha, not a stale image
    moved_rgb, moved_alpha = person(shift=60)
    out = h.harmonize(Composite(moved_rgb, moved_alpha, moved_rgb), moved_rgb, Frame(moved_rgb, 1, 0.03), state)
    inside = moved_alpha > 0
    expected = mapped(moved_rgb / 255, KNOWN) * 255
    assert np.abs(out[inside].astype(float) - expected[inside]).mean() < 1.5
    assert np.array_equal(out[~inside], moved_rgb[~inside])


def test_reinhard_moves_the_person_towards_the_background_and_leaves_a_match_alone():
    h = registry.create("harmonizer", "reinhard")
    rgb, alpha = person()
    warm_bg = np.zeros_like(rgb)
    warm_bg[...] = (200, 120, 60)
    cool = rgb.copy()
    cool[..., 2] = np.clip(cool[..., 2].astype(int) + 60, 0, 255)
    composite = np.where(alpha[..., None] > 0, cool, warm_bg).astype(np.uint8)
    out = h.harmonize(Composite(composite, alpha, cool), warm_bg, Frame(composite, 0, 0.0), StreamState(live=False))
    inside = alpha > 0
    before = composite[inside].mean(0)
    after = out[inside].mean(0)
    assert after[0] - after[2] > before[0] - before[2] + 30  # warmer: red up relative to blue

    # a person already coloured like the scene comes back unchanged
    scene = np.random.default_rng(5).integers(0, 256, rgb.shape, dtype=np.uint8)
    out = h.harmonize(Composite(scene, alpha, scene), scene, Frame(scene, 0, 0.0), StreamState(live=False))
    assert np.abs(out.astype(int) - scene).mean() < 2.0


def test_background_statistics_are_computed_once_per_background(monkeypatch):
    import models.harmonizers.reinhard as reinhard

    calls = []
    original = reinhard.lab_stats
    monkeypatch.setattr(reinhard, "lab_stats", lambda lab: calls.append(1) or original(lab))
    h = registry.create("harmonizer", "reinhard")
    rgb, alpha = person()
    bg = np.full_like(rgb, 90)
    state = StreamState(live=False)
    for i in range(12):  # 0.4 s at 30 fps: several predictions at 5 Hz
        h.harmonize(Composite(rgb, alpha, rgb), bg, Frame(rgb, i, i / 30), state)
    assert len(calls) == 1 and h.current_transform(state) is not None
    h.background_changed(state)
    h.harmonize(Composite(rgb, alpha, rgb), np.full_like(rgb, 200), Frame(rgb, 30, 1.0), state)
    assert len(calls) == 2


@pytest.mark.parametrize("strength", [0.0, 0.5])
def test_strength_moves_the_map_from_the_identity(strength):
    h = KnownMapNetwork(device="cpu", strength=strength)
    h.keep_bright = False  # the map alone (the lift at a strength: test_keep_bright)
    rgb, alpha = person()
    out = h.harmonize(Composite(rgb, alpha, rgb), rgb, Frame(rgb, 0, 0.0), StreamState(live=False))
    if strength == 0:
        assert out is rgb
    else:
        expected = apply_colour_affine(rgb, alpha, identity_affine() + 0.5 * (KNOWN.reshape(12) - identity_affine()))
        assert np.abs(out.astype(int) - expected).max() <= 3
