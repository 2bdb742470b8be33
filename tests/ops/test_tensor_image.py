"""The tensor (device) image ops give the results of their OpenCV/NumPy twins."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.ops import tensor_image as ti
from models.ops.blur import masked_blur, masked_blur_tensor
from models.ops.guided import fast_guided_filter, fast_guided_filter_tensor

# (height, width): odd, tiny, one pixel, and not multiples of the work-copy factors.
SIZES = [(1, 1), (5, 7), (7, 5), (2, 9), (37, 53), (120, 90)]


def rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def tensor(a: np.ndarray) -> torch.Tensor:
    """H×W → 1×1×H×W, H×W×C → 1×C×H×W (CPU, sharing nothing)."""
    t = torch.tensor(a)
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None].contiguous()


def array(t: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`tensor`."""
    return t[0, 0].numpy() if t.shape[1] == 1 else t[0].permute(1, 2, 0).numpy()


def portrait_and_matte(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured uint8 picture and a soft elliptical matte of a person in its middle."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([x / max(w, 1) * 255, y / max(h, 1) * 255, 128 + 100 * np.sin(x / 3 + y / 5)], axis=-1)
    rgb = np.clip(rgb + rng(h, w).normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    r = np.hypot((x - w / 2) / (0.25 * w + 1), (y - h / 2) / (0.4 * h + 1))
    return rgb, np.clip(4 * (1 - r), 0, 1).astype(np.float32)


@pytest.mark.parametrize("h, w", SIZES)
def test_upload_download_round_trip_is_exact(h, w):
    rgb = rng(h, w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb.setflags(write=False)  # cached backgrounds are read-only
    image = ti.upload(rgb, "cpu")
    assert image.shape == (1, 3, h, w) and image.dtype == torch.float32 and image.is_contiguous()
    np.testing.assert_array_equal(array(image), rgb.astype(np.float32) / 255)
    out = ti.download(image)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)
    strided = np.ascontiguousarray(np.repeat(rgb, 2, axis=1))[:, ::2]
    np.testing.assert_array_equal(ti.download(ti.upload(strided, torch.device("cpu"))), rgb)


def test_download_rounds_to_nearest_and_clamps():
    values = torch.tensor([-0.1, 10.49 / 255, 10.51 / 255, 254.6 / 255, 1.3]).reshape(1, 1, 1, 5)
    out = ti.download(values.expand(1, 3, 1, 5))
    np.testing.assert_array_equal(out[0, :, 0], [0, 10, 11, 255, 255])


@pytest.mark.parametrize("h, w", SIZES)
def test_alpha_round_trip_is_exact_and_a_copy(h, w):
    alpha = rng(h, w).random((h, w), dtype=np.float32)
    expected = alpha.copy()
    t = ti.alpha_tensor(alpha, "cpu")
    assert t.shape == (1, 1, h, w) and t.dtype == torch.float32
    alpha[...] = 7.0  # the tensor must not share the caller's array
    back = ti.alpha_array(t)
    assert back.shape == (h, w) and back.dtype == np.float32
    np.testing.assert_array_equal(back, expected)
    back[...] = 7.0  # nor the returned array the tensor
    np.testing.assert_array_equal(ti.alpha_array(t), expected)


@pytest.mark.parametrize("h, w", SIZES)
def test_gray_is_opencv_rgb2gray(h, w):
    rgb = rng(h, w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    gray = array(ti.rgb_to_gray(ti.upload(rgb, "cpu")))
    # OpenCV's uint8 path rounds fixed-point weights; its float path is the plain formula.
    np.testing.assert_allclose(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) / 255, atol=1 / 255)
    reference = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(gray, reference, atol=1e-6)


@pytest.mark.parametrize("src, dst", [
    ((37, 53), (10, 13)),     # fractional area cells
    ((120, 90), (30, 45)),    # whole blocks (the pooling shortcut)
    ((270, 480), (67, 120)),  # a quarter of 1080p, rounded
    ((7, 5), (1, 1)),
    ((5, 7), (20, 31)),       # enlarging: bilinear
    ((1, 1), (3, 4)),
])
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_opencv(src, dst, channels):
    a = rng(*src, channels).random((*src, channels), dtype=np.float32)
    shrink = dst[0] <= src[0] and dst[1] <= src[1]
    size = dst[::-1]
    reference = cv2.resize(a, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    out = array(ti.resize(tensor(a), size))
    np.testing.assert_allclose(out, reference.reshape(out.shape), atol=1e-5)


def test_resize_mixed_axes_and_same_size():
    a = rng(3).random((12, 40), dtype=np.float32)
    # Enlarge rows, shrink columns: bilinear along y, area along x, one axis at a time.
    reference = cv2.resize(cv2.resize(a, (15, 12), interpolation=cv2.INTER_AREA), (15, 31),
                           interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(array(ti.resize(tensor(a), (15, 31))), reference, atol=1e-5)
    t = tensor(a)
    assert ti.resize(t, (40, 12)) is t


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("radius", [1, 4, 12])
def test_box_blur_matches_cv2_blur_up_to_the_borders(h, w, radius):
    a = rng(h, w, radius).random((h, w, 3), dtype=np.float32)
    reference = cv2.blur(a, (2 * radius + 1, 2 * radius + 1))
    np.testing.assert_allclose(array(ti.box_blur(tensor(a), radius)), reference, atol=1e-5)


@pytest.mark.parametrize("sigma, taps", [(0.05, 1), (0.1, 3), (0.5, 5), (1.0, 9), (2.3, 19), (23.04, 185)])
def test_gaussian_kernel_size_follows_opencv(sigma, taps):
    assert ti.gaussian_kernel_size(sigma) == taps


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("sigma", [0.7, 2.5, 23.04])
def test_gaussian_blur_matches_cv2_up_to_the_borders(h, w, sigma):
    a = rng(h, w, round(sigma * 10)).random((h, w, 3), dtype=np.float32)
    reference = cv2.GaussianBlur(a, (0, 0), sigma)
    np.testing.assert_allclose(array(ti.gaussian_blur(tensor(a), sigma)), reference, atol=1e-5)


@pytest.mark.parametrize("h, w, long_side", [(5, 7, 320), (120, 90, 320), (240, 320, 160), (181, 247, 96)])
def test_guided_filter_tensor_matches_opencv(h, w, long_side):
    rgb, matte = portrait_and_matte(h, w)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    blurry = cv2.GaussianBlur(matte, (0, 0), 3)
    reference = fast_guided_filter(gray, blurry, radius=4, eps=1e-3, work_long_side=long_side)
    out = array(fast_guided_filter_tensor(tensor(gray), tensor(blurry), 4, 1e-3, long_side))
    diff = np.abs(out - reference)  # measured: max 9e-5 (eps amplifies rounding), mean 1e-6
    assert diff.max() < 5e-4 and diff.mean() < 1e-5


@pytest.mark.parametrize("h, w", [(1, 1), (5, 7), (45, 67), (120, 160), (180, 320)])
@pytest.mark.parametrize("strength", [0.5, 2.0, 10.0])
def test_masked_blur_tensor_matches_numpy(h, w, strength):
    rgb, matte = portrait_and_matte(h, w)
    reference = masked_blur(rgb, matte, strength).astype(np.float32)
    out = array(masked_blur_tensor(ti.upload(rgb, "cpu"), tensor(matte), strength)) * 255
    # NumPy rounds its quarter-size copy to uint8 and truncates the small result to uint8 before enlarging
    # it, so it is darker by up to half a level on average (measured: diff in [−2.9, 2.2], mean 0.0…0.7).
    diff = out - reference
    assert np.abs(diff).max() <= 3 and -0.1 <= diff.mean() < 1


def test_masked_blur_falls_back_to_the_plain_blur_under_the_person():
    rgb, _ = portrait_and_matte(64, 96)
    solid = np.ones((64, 96), np.float32)  # no background anywhere: den = 0
    image = ti.upload(rgb, "cpu")
    out = masked_blur_tensor(image, tensor(solid), 1.0)
    plain = ti.resize(ti.gaussian_blur(ti.resize(image, (24, 16)), 0.012 * 24 * 4), (96, 64))
    torch.testing.assert_close(out, plain, atol=1e-6, rtol=0)
    np.testing.assert_allclose(array(out) * 255, masked_blur(rgb, solid, 1.0), atol=2.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_tensors():
    rgb, matte = portrait_and_matte(181, 247)
    on_cpu, on_gpu = ti.upload(rgb, "cpu"), ti.upload(rgb, "cuda")
    alpha_cpu, alpha_gpu = ti.alpha_tensor(matte, "cpu"), ti.alpha_tensor(matte, "cuda")
    assert on_gpu.is_cuda and alpha_gpu.is_cuda
    np.testing.assert_array_equal(ti.download(on_gpu), rgb)
    np.testing.assert_array_equal(ti.alpha_array(alpha_gpu), matte)

    def same(op, tol=1e-5):
        torch.testing.assert_close(op(on_gpu, alpha_gpu).cpu(), op(on_cpu, alpha_cpu), atol=tol, rtol=0)

    same(lambda image, alpha: ti.rgb_to_gray(image))
    for size in [(61, 45), (40, 40), (500, 400), (300, 100)]:
        same(lambda image, alpha: ti.resize(image, size))
    same(lambda image, alpha: ti.box_blur(image, 4))
    same(lambda image, alpha: ti.box_blur(image[..., :3, :2], 4))  # folded borders
    same(lambda image, alpha: ti.gaussian_blur(image, 2.5))
    same(lambda image, alpha: ti.gaussian_blur(image, 60.0))
    same(lambda image, alpha: fast_guided_filter_tensor(ti.rgb_to_gray(image), alpha, work_long_side=96), 1e-4)
    same(lambda image, alpha: masked_blur_tensor(image, alpha, 2.0), 1e-4)


@pytest.mark.parametrize("strength", [1.0, 3.0])
def test_masked_blur_on_a_small_copy_is_the_full_resolution_formula(strength):
    """blur(F·(1−α)) / blur(1−α) with σ = 4.8 % of the width × strength, evaluated at full resolution in
    float64 (an independent formula), against the fast version on its small copy: where there is background
    to average, within a few levels."""
    rgb, matte = portrait_and_matte(180, 320)
    sigma = 0.048 * 320 * strength
    weight = 1.0 - matte.astype(np.float64)
    num = cv2.GaussianBlur(rgb.astype(np.float64) * weight[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    exact = num / np.maximum(den, 1e-9)
    background = (matte < 0.5) & (den[..., 0] > 0.2)
    diff = np.abs(masked_blur(rgb, matte, strength) - exact)[background]
    assert np.percentile(diff, 99) <= 6 and diff.mean() <= 2
