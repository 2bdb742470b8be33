"""Linear blending: the uint8 fast path equals α·F + (1−α)·B."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models import registry
from models.blending import linear
from models.blending.linear import blend_linear, blend_linear_torch
from models.frame import Frame
from models.ops.compiled import alpha_spans
from models.matting.base import Matte
from models.stream import StreamState


def blend(frame_rgb, alpha, bg, foreground=None):
    linear = registry.create("blend", "linear")
    return linear.blend(Frame(frame_rgb, 0, 0.0), Matte(alpha, foreground), bg, StreamState())


def test_uint8_fast_path_matches_the_formula():
    rng = np.random.default_rng(1)
    fg = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    alpha = rng.random((37, 53), dtype=np.float32)
    composite = blend(fg, alpha, bg)
    out = composite.image
    assert composite.alpha is alpha and composite.foreground is fg  # the harmonizer gets what was used
    ref = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    assert out.dtype == np.uint8 and out.shape == fg.shape
    assert np.abs(out.astype(float) - ref).max() <= 1.0


@pytest.mark.parametrize("compiled", [True, False])
def test_both_paths_give_opencvs_blend_of_the_whole_frame_bit_for_bit(monkeypatch, compiled):
    """The compiled loop on each row's span of α > 0 and, without Numba, OpenCV in strips around α > 0."""
    monkeypatch.setattr(linear, "compiler_installed", lambda: compiled)
    rng = np.random.default_rng(2)
    fg, bg = (rng.integers(0, 256, (90, 700, 3), dtype=np.uint8) for _ in range(2))
    alpha = rng.random((90, 700), dtype=np.float32)
    alpha[:, :100] = alpha[:, 650:] = alpha[40:50] = 0  # background beside the person and across a row
    alpha[rng.random(alpha.shape) < 0.2] = 0
    alpha[rng.random(alpha.shape) < 0.2] = 1
    want = cv2.blendLinear(fg, bg, alpha, 1.0 - alpha)
    assert np.array_equal(blend_linear(fg, alpha, bg), want)
    assert np.array_equal(blend_linear(fg[:, ::-1], alpha, bg), cv2.blendLinear(fg[:, ::-1].copy(), bg, alpha,
                                                                                  1.0 - alpha))  # a mirrored view


@pytest.mark.parametrize("compiled", [True, False])
def test_the_composite_carries_the_row_spans_the_compiled_blend_used(monkeypatch, compiled):
    monkeypatch.setattr(linear, "compiler_installed", lambda: compiled)
    rng = np.random.default_rng(5)
    fg, bg = (rng.integers(0, 256, (40, 90, 3), dtype=np.uint8) for _ in range(2))
    alpha = np.zeros((40, 90), np.float32)
    alpha[5:30, 20:60] = rng.random((25, 40), dtype=np.float32)
    composite = blend(fg, alpha, bg)
    assert np.array_equal(composite.image, cv2.blendLinear(fg, bg, alpha, 1.0 - alpha))
    if compiled:  # the filters of the harmonizer reuse them
        assert np.array_equal(composite.spans, alpha_spans(alpha))
    else:
        assert composite.spans is None


def test_foreground_colour_replaces_the_frame():
    frame = np.zeros((4, 4, 3), np.uint8)
    fgr = np.full((4, 4, 3), 200, np.uint8)
    bg = np.full((4, 4, 3), 100, np.uint8)
    composite = blend(frame, np.ones((4, 4), np.float32), bg, foreground=fgr)
    assert (composite.image == 200).all() and composite.foreground is fgr


def test_where_alpha_is_one_the_camera_pixels_come_through_exactly():
    rng = np.random.default_rng(4)
    rgb, bg = rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    alpha = rng.random((24, 40), dtype=np.float32)
    alpha[4:20, 8:30] = 1
    opaque = alpha == 1
    assert np.array_equal(blend(rgb, alpha, bg).image[opaque], rgb[opaque])
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    out = blend_linear_torch(pixels, torch.from_numpy(alpha)[None, None],
                             torch.from_numpy(bg).permute(2, 0, 1)[None].float() / 255)
    assert torch.equal(out[0][:, torch.from_numpy(opaque)], pixels[0][:, torch.from_numpy(opaque)])


def test_torch_path_matches_numpy():
    rng = np.random.default_rng(2)
    fg, bg = rng.random((2, 1, 3, 8, 8), dtype=np.float32)
    a = rng.random((1, 1, 8, 8), dtype=np.float32)
    out = blend_linear_torch(torch.from_numpy(fg), torch.from_numpy(a), torch.from_numpy(bg)).numpy()
    np.testing.assert_allclose(out, a * fg + (1 - a) * bg, atol=1e-6)


def test_device_frames_blend_on_the_device_representation():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    alpha = rng.random((6, 10), dtype=np.float32)
    host = blend(rgb, alpha, bg).image
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    frame = Frame(rgb, 0, 0.0, pixels)
    bg_t = torch.from_numpy(bg).permute(2, 0, 1)[None].float() / 255
    composite = registry.create("blend", "linear").blend(frame, Matte(torch.from_numpy(alpha)[None, None]), bg_t,
                                                          StreamState())
    assert composite.image.shape == (1, 3, 6, 10) and composite.foreground is pixels
    device_out = (composite.image[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(device_out - host).max() <= 1


def test_a_blend_without_weights_refuses_a_weights_file():
    import pytest

    with pytest.raises(ValueError, match="no weights"):
        registry.create("blend", "linear", weights="blend.safetensors")
