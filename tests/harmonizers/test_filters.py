"""The Harmonizer white-box filters, the fast full-resolution path and the .cube export.

The NumPy float64 versions below are written from the formulas (not from the
torch code) and serve as an independent check of every filter.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.harmonizer.filter_apply import (
    ChannelCurves,
    STATS_PIXELS,
    FilterApplier,
    apply_filters_reference_uint8,
    effective_args,
    statistics_sample,
)
from models.harmonizers.harmonizer.lut_export import export_cube

EPS = 1e-6


# --- independent float64 formulas (image: 3×H×W) -------------------------------------------

def _temperature_gains(img, x):
    m = img.mean(axis=(1, 2))
    gray = m.mean()
    a = 1 - gray / (m + EPS)
    d = np.array([abs(x) if x < 0 else 0.0, abs(x) / 2 if x != 0 else 0.0, abs(x) if x > 0 else 0.0])
    m2 = m + d
    return m2.mean() / (m2 + EPS) + a


def np_temperature(img, x):
    return np.clip(_temperature_gains(img, x)[:, None, None] * img, 0, 1)


def np_brightness(img, x):
    gain = 1 / (1 - x + EPS) if x >= 0 else 1 + x
    return np.clip(gain * img, 0, 1)


def np_contrast(img, x):
    k = x if x <= 0 else 255 / (256 - np.floor(255 * x)) - 1
    return np.clip(img + (img - img.mean()) * k, 0, 1)


def np_saturation(img, x):
    cmax, cmin = img.max(axis=0), img.min(axis=0)
    light = (cmax + cmin) / 2
    s = np.where(light < 0.5, (cmax - cmin) / (cmax + cmin + EPS), (cmax - cmin) / (2 - cmax - cmin + EPS))
    if x >= 0:
        b = np.where(x + s > 1, s, 1 - x)
        out = img + (img - light) * (1 / (b + EPS) - 1)
    else:
        out = light + (img - light) * (1 + x)
    return np.clip(out, 0, 1)


def np_highlight(img, x):
    return np.clip(1 - np.clip((1 - img + 1e-9) ** (1 + x), 0, 1), 0, 1)


def np_shadow(img, x):
    return np.clip(np.clip((img + 1e-9) ** (1 - x), 0, 1), 0, 1)


NP_FILTERS = {"temperature": np_temperature, "brightness": np_brightness, "contrast": np_contrast,
              "saturation": np_saturation, "highlight": np_highlight, "shadow": np_shadow}


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # The tensors here are small: a second OpenMP thread only adds spin-waits, which
    # cost seconds when other processes share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.resize(data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def soft_mask() -> np.ndarray:
    alpha = np.zeros((240, 320), np.float32)
    cv2.ellipse(alpha, (170, 150), (80, 110), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(alpha, (21, 21), 0)


def to_tensor(img: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    # Contiguous NCHW: the global means are then summed in the same order on every path.
    return torch.from_numpy(img).permute(2, 0, 1)[None].to(dtype).div(255).contiguous()


def random_args(rng: np.random.Generator, scale=F.ARG_RANGES) -> np.ndarray:
    return rng.uniform(-1, 1, 6) * np.asarray(scale)


# --- the filters ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", F.FILTER_ORDER)
def test_each_filter_matches_formula(photo, name):
    small = photo[::4, ::4]
    img64 = to_tensor(small, torch.float64)
    for x in (-1.0, -0.63, -0.2, 0.0, 0.17, 0.37, 0.81, 1.0):
        got = F.apply_filter(name, img64, torch.tensor([x], dtype=torch.float64))[0].numpy()
        want = NP_FILTERS[name](img64[0].numpy(), x)
        np.testing.assert_allclose(got, want, atol=1e-10, err_msg=f"{name} x={x}")


def test_filters_accept_batches_and_float32(photo):
    img = to_tensor(photo[::8, ::8]).repeat(2, 1, 1, 1)
    out = F.apply_filter("temperature", img, torch.tensor([[0.3], [-0.3]]))
    np.testing.assert_allclose(out[0].numpy(), np_temperature(img[0].double().numpy(), 0.3), atol=1e-5)
    np.testing.assert_allclose(out[1].numpy(), np_temperature(img[1].double().numpy(), -0.3), atol=1e-5)
    with pytest.raises(ValueError, match="unknown filter"):
        F.apply_filter("vibrance", img, 0.1)


def test_zero_arguments_are_identity(photo):
    img = to_tensor(photo)
    out = F.apply_filters(img, torch.zeros(1, 6))
    assert (out - img).abs().max() < 1e-5


def test_arguments_are_clamped(photo, soft_mask):
    img, mask = to_tensor(photo[::2, ::2]), torch.from_numpy(soft_mask[::2, ::2])[None, None]
    raw = torch.tensor([[2.5, -3.0, 1.7, -1.2, 0.4, -9.0]])
    assert torch.equal(F.apply_filters(img, raw, mask), F.apply_filters(img, raw.clamp(-1, 1), mask))
    assert torch.equal(F.apply_filters_reference(img, raw, mask),
                       F.apply_filters_reference(img, raw.clamp(-1, 1), mask))


def test_chain_matches_reference(photo, soft_mask):
    # Float32, arguments where the chain is well conditioned: highlight and shadow
    # exponents >= 1 and contrast gain <= 2. Elsewhere the official chain itself turns
    # last-bit differences (its HSV round trip) into 1e-4 (see apply_filters_reference).
    img, mask = to_tensor(photo[::2, ::2]), torch.from_numpy(soft_mask[::2, ::2])[None, None]
    rng = np.random.default_rng(1)
    for _ in range(4):
        args = rng.uniform(-1, 1, (1, 6))
        args[0, 2] = min(args[0, 2], 0.5)
        args[0, 4], args[0, 5] = abs(args[0, 4]), -abs(args[0, 5])
        args = torch.from_numpy(args).float()
        for m in (None, mask):
            diff = (F.apply_filters(img, args, m) - F.apply_filters_reference(img, args, m)).abs().max()
            assert diff <= 1e-5
    steps = F.apply_filters(img, args, mask, return_all=True)
    ref_steps = F.apply_filters_reference(img, args, mask, return_all=True)
    assert len(steps) == len(ref_steps) == 6
    for a, b in zip(steps, ref_steps):
        assert (a - b).abs().max() <= 1e-5


def test_chain_matches_reference_everywhere_in_float64(photo, soft_mask):
    img = to_tensor(photo[::4, ::4], torch.float64)
    mask = torch.from_numpy(soft_mask[::4, ::4]).double()[None, None]
    rng = np.random.default_rng(2)
    for _ in range(4):
        args = torch.from_numpy(rng.uniform(-1, 1, (1, 6)))
        assert (F.apply_filters(img, args, mask) - F.apply_filters_reference(img, args, mask)).abs().max() <= 1e-8


def test_chain_matches_formulas_in_order(photo, soft_mask):
    img64 = to_tensor(photo[::4, ::4], torch.float64)
    mask = soft_mask[::4, ::4].astype(np.float64)
    args = np.array([0.2, -0.3, 0.45, 0.35, -0.25, 0.3])
    state = img64[0].numpy()
    for name, x in zip(F.FILTER_ORDER, args):
        state = NP_FILTERS[name](state, x)
    want = state * mask + img64[0].numpy() * (1 - mask)
    got = F.apply_filters(img64, torch.from_numpy(args)[None], torch.from_numpy(mask)[None, None])
    np.testing.assert_allclose(got[0].numpy(), want, atol=1e-10)


def test_adjust_runs_in_reverse_with_ranges(photo):
    img64 = to_tensor(photo[::4, ::4], torch.float64)
    args = np.array([0.9, -0.8, 1.5, 0.5, -0.6, 0.7])
    state = img64[0].numpy()
    scaled = np.clip(args, -1, 1) * np.asarray(F.ARG_RANGES)
    for name, x in reversed(list(zip(F.FILTER_ORDER, scaled))):
        state = NP_FILTERS[name](state, x)
    outs = F.adjust_filters(img64, torch.from_numpy(args)[None], return_all=True)
    assert len(outs) == 6
    np.testing.assert_allclose(outs[-1][0].numpy(), state, atol=1e-10)
    np.testing.assert_allclose(outs[0][0].numpy(), np_shadow(img64[0].numpy(), scaled[5]), atol=1e-10)


def test_gradients_follow_the_official_code(photo, soft_mask):
    img, mask = to_tensor(photo[::4, ::4]), torch.from_numpy(soft_mask[::4, ::4])[None, None]
    for x, zero in ((0.3, True), (-0.3, False)):
        arg = torch.tensor([x], requires_grad=True)
        F.apply_filter("contrast", img, arg).sum().backward()
        assert (arg.grad.abs().item() == 0) == zero
    args = torch.tensor([[0.1, 0.2, -0.2, 0.3, -0.1, 0.15]], requires_grad=True)
    F.apply_filters(img, args, mask).mean().backward()
    assert torch.isfinite(args.grad).all()
    assert (args.grad[0, [0, 1, 2, 3, 4, 5]] != 0).all()


def test_hsv_round_trip(photo):
    img = to_tensor(photo[::4, ::4], torch.float64)
    assert (F.hsv_to_rgb(F.rgb_to_hsv(img)) - img).abs().max() < 1e-12


# --- the fast full-resolution path ----------------------------------------------------------

def test_fast_path_matches_reference(photo, soft_mask):
    rng = np.random.default_rng(7)
    applier = FilterApplier()
    for _ in range(4):
        args = random_args(rng)
        ref = apply_filters_reference_uint8(photo, soft_mask, args)
        fast = applier(photo, soft_mask, args)
        assert fast.dtype == np.uint8 and fast.shape == photo.shape
        assert np.abs(fast.astype(np.int16) - ref).max() <= 1


def test_the_channel_curves_map_arrays_and_tensors_alike(photo):
    """The CPU path's tables come from NumPy arrays, the cube export's from tensors: the same numbers."""
    curves = ChannelCurves.from_frame(photo, 0.4, -0.3, 0.5)
    levels = np.random.default_rng(8).random((3, 64, 5))
    np.testing.assert_array_equal(curves(levels), curves(torch.from_numpy(levels)).numpy())
    assert curves(levels).min() >= 0 and curves(levels).max() <= 1 and curves(levels).std() > 0.1


def test_a_large_frame_takes_its_statistics_from_a_sample_and_stays_within_a_level():
    frame = cv2.resize(data.astronaut(), (1280, 720), interpolation=cv2.INTER_CUBIC)
    sample = statistics_sample(frame)
    assert sample.shape[0] * sample.shape[1] <= STATS_PIXELS < frame.shape[0] * frame.shape[1]
    small = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
    assert statistics_sample(small) is small
    mask = np.zeros((720, 1280), np.float32)
    cv2.ellipse(mask, (680, 450), (300, 330), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (41, 41), 0)
    args = (0.6, 0.3, -0.5, 0.2, 0.1, -0.1)  # temperature and contrast: both whole-frame statistics
    ref = apply_filters_reference_uint8(frame, mask, args)
    assert np.abs(FilterApplier()(frame, mask, args).astype(np.int16) - ref).max() <= 1


@pytest.mark.parametrize("args", [
    (0.1, -0.2, 0.3, 0.0, 0.2, -0.3),      # no saturation
    (0.1, -0.2, 0.3, 0.4, 0.0, 0.0),       # no tone curve
    (0.1, -0.2, 0.3, -0.4, 0.0, 0.0),      # desaturation
    (0.0, 0.0, 0.0, 0.0, 0.3, 0.0),        # tone curve only
    (0.1, 0.2, -0.1, 0.3, -0.5, 0.5),      # tone curve too steep for the table: exact pow
    (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    (-1.0, -1.0, -1.0, -1.0, -1.0, -1.0),
])
def test_fast_path_branches(photo, soft_mask, args):
    ref = apply_filters_reference_uint8(photo, soft_mask, args)
    for backend in ("lut", "torch"):
        fast = FilterApplier(backend=backend)(photo, soft_mask, args)
        assert np.abs(fast.astype(np.int16) - ref).max() <= 1, backend


def test_fast_path_strength_and_mask(photo, soft_mask):
    applier = FilterApplier()
    args = np.array([0.2, 0.3, -0.2, 0.4, -0.2, 0.3])
    assert np.array_equal(applier(photo, soft_mask, args, strength=0.0), photo)
    assert np.array_equal(applier(photo, np.zeros_like(soft_mask), args), photo)
    half = applier(photo, soft_mask, args, strength=0.5)
    assert np.array_equal(half, applier(photo, soft_mask, args * 0.5))
    out = applier(photo, soft_mask, args)
    outside = soft_mask == 0
    assert np.array_equal(out[outside], photo[outside])
    assert not np.array_equal(out[soft_mask > 0.5], photo[soft_mask > 0.5])
    np.testing.assert_array_equal(effective_args([3, -3, 0.5, 0, 0, 0], 0.5), [0.5, -0.5, 0.25, 0, 0, 0])


def test_parallel_bands_give_the_same_frame(photo, soft_mask):
    args = (0.1, 0.2, 0.1, 0.2, -0.1, 0.1)
    one = FilterApplier()(photo, soft_mask, args)
    pool = FilterApplier(workers=3)
    assert np.array_equal(pool(photo, soft_mask, args), one)
    pool.close()


def test_tensors_in_tensors_out(photo, soft_mask):
    args = (0.1, 0.2, 0.1, 0.2, -0.1, 0.1)
    ref = apply_filters_reference_uint8(photo, soft_mask, args)
    for backend in ("lut", "torch"):
        out = FilterApplier(backend=backend)(torch.from_numpy(photo), torch.from_numpy(soft_mask), args)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == photo.shape
        assert np.abs(out.numpy().astype(np.int16) - ref).max() <= 1


# --- .cube export ---------------------------------------------------------------------------

def read_cube(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text(encoding="ascii").splitlines()
    header = lines[:4]
    return header, np.array([[float(v) for v in line.split()] for line in lines[4:]])


def test_cube_identity_at_zero_args(tmp_path):
    path = export_cube(np.zeros(6), tmp_path / "identity.cube", size=5)
    header, table = read_cube(path)
    assert header[0].startswith("TITLE ")
    assert header[1:] == ["LUT_3D_SIZE 5", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    assert table.shape == (125, 3)
    axis = np.linspace(0, 1, 5)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    lattice = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)   # red varies fastest
    assert np.abs(table - lattice).max() <= 2e-6
    assert [p.name for p in tmp_path.iterdir()] == ["identity.cube"]  # no temporary left


def test_cube_follows_the_chain_with_frozen_statistics(photo, tmp_path):
    args = np.array([0.2, 0.1, 0.3, 0.25, -0.2, 0.15])
    path = export_cube(args, tmp_path / "look.cube", composite=photo, size=9)
    header, table = read_cube(path)
    assert header[1] == "LUT_3D_SIZE 9" and table.shape == (9 ** 3, 3)
    # Expected: temperature gains and contrast pivot from the photo, applied to the lattice.
    frame = photo.transpose(2, 0, 1).astype(np.float64) / 255
    gains = _temperature_gains(frame, args[0])
    after_tb = np_brightness(np.clip(gains[:, None, None] * frame, 0, 1), args[1])
    k = 255 / (256 - np.floor(255 * args[2])) - 1
    axis = np.linspace(0, 1, 9)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    lattice = np.stack([r.ravel(), g.ravel(), b.ravel()])[:, :, None]   # red varies fastest
    state = np_brightness(np.clip(gains[:, None, None] * lattice, 0, 1), args[1])
    state = np.clip(state + (state - after_tb.mean()) * k, 0, 1)
    for fn, x in zip((np_saturation, np_highlight, np_shadow), args[3:]):
        state = fn(state, x)
    np.testing.assert_allclose(table, state[:, :, 0].T, atol=2e-6)


def test_cube_needs_a_frame_for_global_statistics(tmp_path):
    with pytest.raises(ValueError, match="pass composite"):
        export_cube([0.2, 0, 0, 0, 0, 0], tmp_path / "x.cube")
    export_cube([0, 0.2, 0, 0.3, 0.1, 0.1], tmp_path / "ok.cube", size=3)
