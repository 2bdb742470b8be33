"""Property-based tests of the per-pixel stages, for any frame size from 1x1 to 64x64.

Every stage must give finite values in range ([0, 255] uint8, [0, 1] float), keep
the shape and dtype, leave pixels with α = 0 exactly as they were, and do nothing
with zero arguments. Pictures come from a drawn seed (random, constant, black and
white, or a gradient), so hypothesis shrinks towards small sizes and simple
pictures; the runs are derandomized (the same examples every time).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from models.blending.linear import blend_linear, blend_linear_torch
from models.harmonizers.harmonizer.filter_apply import FilterApplier, apply_filters_reference_uint8
from models.harmonizers.harmonizer.filters import apply_filters
from models.ops.blur import masked_blur, masked_blur_tensor
from models.ops.colour_transfer import reinhard_lab
from models.ops.colour_transform import apply_colour_affine, fit_colour_affine, identity_affine
from models.ops.guided import fast_guided_filter, fast_guided_filter_tensor

# 30 examples keep the file fast; HARMONICAM_PROPERTY_EXAMPLES=1000 searches deeper (still derandomized).
PROPERTY = settings(max_examples=int(os.environ.get("HARMONICAM_PROPERTY_EXAMPLES", 30)), deadline=None,
                    derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(1, 64)
sizes = st.tuples(sides, sides)  # (height, width)
seeds = st.integers(0, 2**32 - 1)
PICTURES = ("random", "constant", "extremes", "gradient")
MATTES = ("random", "zero", "one", "binary", "soft")
pictures = st.sampled_from(PICTURES)
mattes = st.sampled_from(MATTES)
filter_args = st.lists(st.floats(-1.5, 1.5, allow_nan=False, width=32), min_size=6, max_size=6)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny pictures: one thread is fastest, and on a loaded machine several times so."""
    saved = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(saved[0])
    cv2.setNumThreads(saved[1])


def picture(kind: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """uint8 H×W×3 RGB of one kind."""
    h, w = size
    rng = np.random.default_rng(seed)
    if kind == "constant":
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == "extremes":
        return (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
    if kind == "gradient":
        y, x = np.mgrid[0:h, 0:w]
        return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def matte(kind: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """float32 H×W in [0, 1], with exact zeros and ones where the kind has them."""
    h, w = size
    rng = np.random.default_rng(seed + 1)
    if kind == "zero":
        return np.zeros(size, np.float32)
    if kind == "one":
        return np.ones(size, np.float32)
    if kind == "binary":
        return rng.integers(0, 2, size).astype(np.float32)
    if kind == "soft":  # mostly 0 and 1 with a soft rim, like a real matte
        a = rng.uniform(-0.5, 1.5, size).astype(np.float32)
        return np.clip(a, 0, 1)
    return rng.uniform(0, 1, size).astype(np.float32)


def tensor(rgb: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """uint8 H×W×3 → 1×3×H×W in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].to(dtype).div(255)


def alpha_tensor(alpha: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(alpha)[None, None]


def check_uint8(out: np.ndarray, shape: tuple[int, ...]) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == shape


def check_unit_float(out: torch.Tensor | np.ndarray, shape: tuple[int, ...], dtype, slack: float = 0.0) -> None:
    """Finite, in [0, 1] (``slack`` beyond it only where a known bug needs it), the right shape and dtype."""
    assert out.dtype == dtype and tuple(out.shape) == shape
    values = torch.as_tensor(out)
    assert torch.isfinite(values).all(), "NaN or Inf in the output"
    assert values.min() >= -slack and values.max() <= 1 + slack, (float(values.min()), float(values.max()))


# --- Blending ------------------------------------------------------------------------------------

@PROPERTY
@given(sizes, seeds, pictures, pictures, mattes)
def test_blend_linear(size, seed, fg_kind, bg_kind, alpha_kind):
    fg, bg = picture(fg_kind, size, seed), picture(bg_kind, size, seed + 7)
    alpha = matte(alpha_kind, size, seed)
    out = blend_linear(fg, alpha, bg)
    check_uint8(out, (*size, 3))
    zero, one = alpha == 0, alpha == 1
    assert np.array_equal(out[zero], bg[zero])
    assert np.array_equal(out[one], fg[one])
    # A convex mix: never outside the two inputs.
    assert (out >= np.minimum(fg, bg)).all() and (out <= np.maximum(fg, bg)).all()


@PROPERTY
@given(sizes, seeds, pictures, pictures, mattes)
def test_blend_linear_torch(size, seed, fg_kind, bg_kind, alpha_kind):
    fg, bg = tensor(picture(fg_kind, size, seed)), tensor(picture(bg_kind, size, seed + 7))
    alpha = alpha_tensor(matte(alpha_kind, size, seed))
    out = blend_linear_torch(fg, alpha, bg)
    check_unit_float(out, (1, 3, *size), torch.float32)
    zero = (alpha == 0).expand_as(out)
    assert torch.equal(out[zero], bg[zero])
    assert (out >= torch.minimum(fg, bg) - 1e-7).all() and (out <= torch.maximum(fg, bg) + 1e-7).all()


# --- The Harmonizer's filters --------------------------------------------------------------------

@pytest.fixture(scope="module")
def appliers():
    lut, torch_path = FilterApplier(backend="lut"), FilterApplier(backend="torch")
    yield lut, torch_path
    lut.close()
    torch_path.close()


@PROPERTY
@given(sizes, seeds, pictures, mattes, filter_args)
def test_filter_applier(appliers, size, seed, kind, alpha_kind, args):
    composite, alpha = picture(kind, size, seed), matte(alpha_kind, size, seed)
    args = np.array(args, np.float32)
    # A known bug, documented by test_filter_applier_single_pixel_without_saturation below.
    assume(not (np.count_nonzero(alpha) == 1 and args[3] == 0))
    lut, torch_path = appliers
    out = lut(composite, alpha, args)
    check_uint8(out, (*size, 3))
    zero = alpha == 0
    assert np.array_equal(out[zero], composite[zero])
    # Out-of-range arguments are clamped to [-1, 1], nothing else.
    assert np.array_equal(out, lut(composite, alpha, np.clip(args, -1, 1)))
    # The torch path (the GPU's) agrees within one level where the chain is well conditioned
    # (test_filter_paths_disagree_where_the_tone_curve_is_steep documents where it is not).
    out_torch = torch_path(composite, alpha, args)
    check_uint8(out_torch, (*size, 3))
    assert np.array_equal(out_torch[zero], composite[zero])
    clipped = np.clip(args, -1, 1)
    if clipped[4] > -0.44 and clipped[5] < 0.44:
        assert np.abs(out.astype(int) - out_torch.astype(int)).max() <= 1
    # Zero arguments, or strength 0: the composite itself.
    assert np.array_equal(lut(composite, alpha, np.zeros(6, np.float32)), composite)
    assert np.array_equal(lut(composite, alpha, args, strength=0.0), composite)


@PROPERTY
@given(sizes, seeds, pictures, mattes, filter_args, st.sampled_from([torch.float32, torch.float64]))
def test_apply_filters_on_tensors(size, seed, kind, alpha_kind, args, dtype):
    image = tensor(picture(kind, size, seed), dtype)
    mask = alpha_tensor(matte(alpha_kind, size, seed)).to(dtype)
    raw = torch.tensor([args], dtype=dtype)
    out = apply_filters(image, raw, mask)
    check_unit_float(out, (1, 3, *size), dtype)
    zero = (mask == 0).expand_as(out)
    assert torch.equal(out[zero], image[zero])
    assert torch.equal(out, apply_filters(image, raw.clamp(-1, 1), mask))
    # Without a mask every pixel is filtered, still in range.
    check_unit_float(apply_filters(image, raw), (1, 3, *size), dtype)
    # Zero arguments: the image, up to the filters' 1e-6 guards against division by zero.
    same = apply_filters(image, torch.zeros(1, 6, dtype=dtype), mask)
    assert (same - image).abs().max() < 1e-5


# --- Colour transforms ---------------------------------------------------------------------------

affines = st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=12, max_size=12)


@PROPERTY
@given(sizes, seeds, pictures, pictures, mattes)
def test_fit_colour_affine(size, seed, source_kind, target_kind, mask_kind):
    source, target = picture(source_kind, size, seed), picture(target_kind, size, seed + 3)
    mask = matte(mask_kind, size, seed)
    m = fit_colour_affine(source, target, mask)
    assert m.dtype == np.float32 and m.shape == (12,) and np.isfinite(m).all()
    # Nothing to fit (an empty mask), or a target equal to the source: the identity.
    if mask_kind == "zero":
        np.testing.assert_allclose(m, identity_affine(), atol=1e-6)
    same = fit_colour_affine(source, source, mask)
    np.testing.assert_allclose(same, identity_affine(), atol=1e-4)
    # The fitted map, applied, stays a valid picture and keeps α = 0 pixels.
    out = apply_colour_affine(source, mask, m)
    check_uint8(out, (*size, 3))
    assert np.array_equal(out[mask == 0], source[mask == 0])


@PROPERTY
@given(sizes, seeds, pictures, mattes, affines)
def test_apply_colour_affine(size, seed, kind, alpha_kind, transform):
    image, alpha = picture(kind, size, seed), matte(alpha_kind, size, seed)
    transform = np.array(transform, np.float32)
    out = apply_colour_affine(image, alpha, transform)
    check_uint8(out, (*size, 3))
    zero = alpha == 0
    assert np.array_equal(out[zero], image[zero])
    assert np.array_equal(apply_colour_affine(image, alpha, identity_affine()), image)
    # The device form: float 1×3×H×W.
    t_image, t_alpha = tensor(image), alpha_tensor(alpha)
    t_out = apply_colour_affine(t_image, t_alpha, transform)
    check_unit_float(t_out, (1, 3, *size), torch.float32)
    t_zero = (t_alpha == 0).expand_as(t_out)
    assert torch.equal(t_out[t_zero], t_image[t_zero])
    assert torch.allclose(apply_colour_affine(t_image, t_alpha, identity_affine()), t_image, atol=1e-6)


@PROPERTY
@given(sizes, seeds, pictures, pictures, st.sampled_from(("random", "binary", "soft", "one")),
       st.sampled_from(("weights", "image", "stats")), st.booleans(), st.floats(0, 1))
def test_reinhard_lab(size, seed, kind, ref_kind, mask_kind, ref_form, as_float, strength):
    image = picture(kind, size, seed)
    mask = matte(mask_kind, size, seed)
    if mask.sum() == 0:  # "binary" and "soft" can draw no foreground at all on a tiny frame
        mask.flat[0] = 1.0
    reference_rgb = picture(ref_kind, (max(1, size[0] // 2), size[1]), seed + 5)
    if ref_form == "weights":
        reference = 1 - mask
        if reference.sum() == 0:
            reference = np.ones_like(mask)
    elif ref_form == "image":
        reference = reference_rgb
    else:
        from models.ops.colour_transfer import lab_stats, to_lab

        reference = lab_stats(to_lab(reference_rgb.astype(np.float32) / 255))
    source = image.astype(np.float32) / 255 if as_float else image
    out = reinhard_lab(source, mask, reference, strength)
    if as_float:
        check_unit_float(out, (*size, 3), np.float32)
    else:
        check_uint8(out, (*size, 3))
    zero = mask == 0
    assert np.array_equal(out[zero], source[zero])
    assert np.array_equal(reinhard_lab(source, mask, reference, 0.0), source) if not as_float else \
        np.allclose(reinhard_lab(source, mask, reference, 0.0), source, atol=1e-6)


def test_reinhard_lab_refuses_an_empty_foreground():
    image = picture("random", (8, 8), 1)
    with pytest.raises(ValueError, match="region for colour statistics is empty"):
        reinhard_lab(image, np.zeros((8, 8), np.float32), image)


# --- Guided filter and blur ----------------------------------------------------------------------

def grey(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255


@PROPERTY
@given(sizes, seeds, pictures, mattes, st.integers(1, 8), st.sampled_from([1e-4, 1e-3, 1e-2]),
       st.sampled_from([8, 32, 320]))
def test_fast_guided_filter(size, seed, kind, src_kind, radius, eps, work):
    guide, src = grey(picture(kind, size, seed)), matte(src_kind, size, seed)
    out = fast_guided_filter(guide, src, radius, eps, work)
    check_unit_float(out, size, np.float32)
    t_out = fast_guided_filter_tensor(torch.from_numpy(guide)[None, None], torch.from_numpy(src)[None, None],
                                      radius, eps, work)
    check_unit_float(t_out, (1, 1, *size), torch.float32)
    if src_kind in ("zero", "one"):  # a constant matte stays that constant
        np.testing.assert_allclose(out, src, atol=1e-3)
        np.testing.assert_allclose(t_out[0, 0].numpy(), src, atol=1e-3)


@PROPERTY
@given(sizes, seeds, pictures, mattes, st.floats(0.05, 10))
def test_masked_blur(size, seed, kind, alpha_kind, strength):
    rgb, alpha = picture(kind, size, seed), matte(alpha_kind, size, seed)
    out = masked_blur(rgb, alpha, strength)
    check_uint8(out, (*size, 3))
    t_out = masked_blur_tensor(tensor(rgb), alpha_tensor(alpha), strength)
    # 1 ulp over 1: a known bug, see test_masked_blur_tensor_stays_at_most_one.
    check_unit_float(t_out, (1, 3, *size), torch.float32, slack=1e-6)
    if kind == "constant":  # nothing to blur: the same picture (see the rounding bug below for uint8)
        assert torch.allclose(t_out, tensor(rgb), atol=1e-5)
        assert np.abs(out.astype(int) - rgb).max() <= 1


# --- Bugs these properties found, kept as regression tests ------------------------------------

def test_filter_applier_single_pixel_with_tone_curve():
    composite, alpha = np.array([[[173, 250, 252]]], np.uint8), np.array([[0.7]], np.float32)
    args = np.array([0, 0, 0, 0, 0, 1.0], np.float32)  # shadow only
    FilterApplier(backend="lut")(composite, alpha, args)


def test_filter_applier_single_pixel_without_saturation():
    rng = np.random.default_rng(0)
    composite = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    alpha = np.zeros((48, 64), np.float32)
    alpha[10, 20] = 0.8  # one stray matte pixel, as real mattes have
    args = np.array([0, 0, 1.0, 0, 0, 0], np.float32)  # contrast only
    want = apply_filters_reference_uint8(composite, alpha, args)
    got = FilterApplier(backend="lut")(composite, alpha, args)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, (got[10, 20], want[10, 20])


@pytest.mark.xfail(strict=True, reason="a known limit, documented in filter_apply: where the highlight curve is "
                   "singular (exponent 1 + h < 0.56 at a value of exactly 1.0 after saturation), float32 rounding of "
                   "1e-6 moves the result by up to 8 levels; the CPU path stays within one level everywhere else")
def test_filter_paths_disagree_where_the_tone_curve_is_steep():
    composite, alpha = np.array([[[139, 181, 169]]], np.uint8), np.ones((1, 1), np.float32)
    args = np.array([0, 0, 0, 1.0, -0.75, 0], np.float32)
    want = apply_filters_reference_uint8(composite, alpha, args).astype(int)
    assert np.abs(FilterApplier(backend="torch")(composite, alpha, args) - want).max() <= 1  # holds
    assert np.abs(FilterApplier(backend="lut")(composite, alpha, args) - want).max() <= 1  # fails: 8 levels


def test_masked_blur_keeps_a_constant_picture():
    rgb = np.full((2, 2, 3), (255, 228, 34), np.uint8)
    alpha = np.array([[0.02322427, 0.09698229], [1.0, 0.0]], np.float32)
    assert np.array_equal(masked_blur(rgb, alpha, 1.0), rgb)


def test_masked_blur_tensor_stays_at_most_one():
    out = masked_blur_tensor(torch.ones(1, 3, 19, 19), torch.zeros(1, 1, 19, 19), 1.0)
    assert out.max() <= 1.0, out.max().item()
