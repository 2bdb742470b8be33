"""Image operations on torch tensors, any device: the device twins of the OpenCV calls.

Pictures are float 1×C×H×W in [0,1] (RGB C = 3, mattes and grey C = 1); every
function keeps the layout it receives and never leaves the tensor's device.
Each one follows its OpenCV counterpart (kernel sizes, borders, sampling
grids), so a stage gives the same result on the NumPy and the tensor path.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def to_device(array: np.ndarray, device: str | torch.device, dtype: torch.dtype) -> Tensor:
    """A copy of ``array`` (cast to ``dtype``) on ``device``; to a GPU from pinned memory, without waiting
    (every per-frame upload, down to a few filter arguments, goes this way)."""
    device = torch.device(device)
    pinned = device.type == "cuda"
    # Page-locked memory lets the copy to the GPU run asynchronously; filling it
    # through NumPy also takes read-only and strided arrays (torch.from_numpy warns on the former).
    host = torch.empty(array.shape, dtype=dtype, pin_memory=pinned)
    host.numpy()[...] = array
    return host.to(device, non_blocking=pinned)


def upload(rgb: np.ndarray, device: str | torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 H×W×3 → ``dtype`` 1×3×H×W in [0,1] on ``device``."""
    # Bytes cross the bus (a quarter of float32); the conversion runs on the device.
    pixels = to_device(rgb, device, torch.uint8).permute(2, 0, 1).unsqueeze(0)
    return pixels.to(dtype, memory_format=torch.contiguous_format).div_(255)


def to_bytes(image: Tensor) -> Tensor:
    """1×3×H×W in [0,1] → uint8 H×W×3 on the image's device, rounded to nearest (what the sinks take)."""
    return image[0].mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def download(image: Tensor) -> np.ndarray:
    """1×3×H×W in [0,1] → uint8 H×W×3 in host memory, waiting for it: the frame's one download on a device
    path."""
    return to_bytes(image).cpu().numpy()


def alpha_tensor(alpha: np.ndarray, device: str | torch.device) -> Tensor:
    """float32 H×W → float32 1×1×H×W on ``device``."""
    return to_device(alpha, device, torch.float32)[None, None]


def alpha_array(alpha: Tensor) -> np.ndarray:
    """1×1×H×W → float32 H×W in host memory (a copy, never a view of the tensor)."""
    return alpha[0, 0].to("cpu", torch.float32, copy=True).numpy()


def resize_mask(mask: np.ndarray | Tensor, size: tuple[int, int]) -> np.ndarray | Tensor:
    """A bool mask (H×W array, or 1×1×H×W tensor) at ``size`` = (width, height) by nearest neighbour
    (OpenCV's sampling on both); the mask itself when it has that size already."""
    if tuple(mask.shape[-2:]) == (size[1], size[0]):
        return mask
    if isinstance(mask, Tensor):
        return F.interpolate(mask.float(), size=(size[1], size[0]), mode="nearest") > 0.5
    return cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)


def enlarge(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A host alpha (float32 h×w) at ``size`` = (width, height), bilinear (``cv2.INTER_LINEAR``); the alpha itself
    when it has that size already."""
    if alpha.shape[:2] == (size[1], size[0]):
        return alpha
    return cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)


def rgb_to_gray(image: Tensor) -> Tensor:
    """1×3×H×W → 1×1×H×W, Y = 0.299·R + 0.587·G + 0.114·B (ITU-R 601, as cv2.COLOR_RGB2GRAY)."""
    return image[:, 0:1] * 0.299 + image[:, 1:2] * 0.587 + image[:, 2:3] * 0.114


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample to ``size`` = (width, height): area averaging along a shrinking
    axis (cv2.INTER_AREA), bilinear along an enlarging one (cv2.INTER_LINEAR)."""
    width, height = size
    h, w = image.shape[-2:]
    if (w, h) == (width, height):
        return image
    if width <= w and height <= h:
        return _area(image, width, height)
    if width >= w and height >= h:
        return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False)
    # Shrinking one axis and enlarging the other: one axis at a time.
    return resize(resize(image, (width, h)), (width, height))


def _area(image: Tensor, width: int, height: int) -> Tensor:
    """Each output pixel is the mean of the input area it covers (exact INTER_AREA)."""
    h, w = image.shape[-2:]
    if h % height == 0 and w % width == 0:
        # Whole blocks: a plain average pool, much cheaper than the matrices.
        return F.avg_pool2d(image, (h // height, w // width))
    rows = _area_weights(h, height, image.device, image.dtype)
    cols = _area_weights(w, width, image.device, image.dtype)
    return rows @ image @ cols.T


@functools.lru_cache(maxsize=32)
def _area_weights(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """n_out×n_in matrix: the share of each input pixel in each output pixel."""
    # Built in float64 on the host once per size, like OpenCV's own tables.
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(start + scale, pixel + 1) - np.maximum(start, pixel), 0, None)
    overlap[overlap <= 1e-3] = 0  # OpenCV drops slivers this thin (computeResizeAreaTab)
    return torch.from_numpy(overlap / scale).to(device, dtype)


def _reflect_101(n: int, pad: int) -> np.ndarray:
    """Source index of each position in [−pad, n + pad) under BORDER_REFLECT_101
    (…2 1 |0 1 2 … n−1| n−2…), folding again when ``pad`` exceeds the image, as
    cv2.borderInterpolate does."""
    if n == 1:
        return np.zeros(n + 2 * pad, np.int64)
    period = 2 * n - 2
    folded = np.arange(-pad, n + pad) % period
    return np.where(folded < n, folded, period - folded)


@functools.lru_cache(maxsize=32)
def _border_index(n: int, pad: int, device: torch.device) -> Tensor:
    """:func:`_reflect_101` as an index tensor on ``device``, made once per size."""
    return torch.from_numpy(_reflect_101(n, pad)).to(device)


def _pad_reflect_101(x: Tensor, pad_y: int, pad_x: int) -> Tensor:
    """Pad the last two axes with OpenCV's default border, for any image size."""
    h, w = x.shape[-2:]
    if pad_y < h and pad_x < w:
        return F.pad(x, (pad_x, pad_x, pad_y, pad_y), mode="reflect")
    # torch's reflect pad stops at the image size; small images fold by index instead.
    x = x.index_select(-2, _border_index(h, pad_y, x.device))
    return x.index_select(-1, _border_index(w, pad_x, x.device))


def box_blur(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2r+1)² window around each pixel, border reflect-101 (cv2.blur)."""
    size = 2 * radius + 1
    return F.avg_pool2d(_pad_reflect_101(x, radius, radius), size, stride=1)


def gaussian_kernel_size(sigma: float) -> int:
    """The taps cv2.GaussianBlur uses for a float image with ksize (0, 0): ±4σ, odd."""
    # OpenCV's cvRound rounds half to even, like Python's round().
    return round(sigma * 4 * 2 + 1) | 1


@functools.lru_cache(maxsize=32)
def _gaussian_matrix(n: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """n×n matrix of the 1-D blur: taps exp(−x²/2σ²) normalised as cv2.getGaussianKernel,
    with the reflect-101 border folded in (taps that fall outside add onto their mirror pixel)."""
    size = gaussian_kernel_size(sigma)
    pad = size // 2
    x = np.arange(size) - pad
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    source = _reflect_101(n, pad)[np.arange(n)[:, None] + np.arange(size)]
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.repeat(np.arange(n), size), source.ravel()), np.tile(taps / taps.sum(), n))
    return torch.from_numpy(matrix).to(device, dtype)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur, cv2.GaussianBlur(x, (0, 0), sigma) of a float image."""
    if gaussian_kernel_size(sigma) == 1:
        return x
    h, w = x.shape[-2:]
    # Two matrix products rather than a convolution: the kernel is often wider than the
    # work copy (±4σ), the borders come for free, and CUDA convolutions default to TF32.
    rows = _gaussian_matrix(h, sigma, x.device, x.dtype)
    cols = _gaussian_matrix(w, sigma, x.device, x.dtype)
    return rows @ x @ cols.T
