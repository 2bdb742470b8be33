"""``learned``: the blending network of Xing et al. (ACM MM 2022) as a pipeline stage.

The frame, its matte and the complete background are reduced to a working copy
(long side ``WORK_LONG_SIDE``); the network (:mod:`models.blending.blend_net`) runs
only on the box around the person's outline, where the matte is neither 0 nor 1,
widened by its receptive field. Its correction (Δα, ΔF) is enlarged to full
resolution — the α correction through a guided filter with the frame as the guide,
so it follows the frame's own edges rather than the 512-pixel grid — and applied in
the mixed band only (:mod:`models.blending.band`: α well below 1 near the outline;
never on pixels the matte excluded): elsewhere α is the matte's and the foreground
is the camera frame, so a face keeps its own pixels. The composite is α·F + (1−α)·B
at full resolution. With no outline in view, or zero corrections, it is exactly
linear blending.
"""
from __future__ import annotations

import math
import os

import cv2
import numpy as np
import torch

from models.blending.band import mixed_band, mixed_band_tensor
from models.blending.base import Blend, Composite
from models.blending.blend_net import BlendUNet, pad_to
from models.blending.linear import blend_linear_torch, composite_linear
from models.frame import Frame, on_device
from models.matting.base import Matte
from models.ops.guided import fast_guided_filter, fast_guided_filter_tensor
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import resize, rgb_to_gray
from models.registry import register
from models.stream import StreamState
from models.weights import shipped_check, weights_path

ARCHITECTURE = f"{BlendUNet.__module__}.{BlendUNet.__name__}"
WORK_LONG_SIDE = 512
#: Working pixels added around the outline: about the network's receptive field (2 levels of 3×3 pairs).
MARGIN = 12
#: The outline: where the working-size matte is neither background nor person.
OUTLINE = (0.01, 0.99)
GUIDE_RADIUS, GUIDE_EPS = 2, 1e-4


def outline_box(alpha: np.ndarray, margin: int = MARGIN) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the outline of a working-size matte, widened by ``margin``; None if none."""
    ys, xs = np.nonzero((alpha > OUTLINE[0]) & (alpha < OUTLINE[1]))
    if ys.size == 0:
        return None
    h, w = alpha.shape
    return (max(0, xs.min() - margin), max(0, ys.min() - margin),
            min(w, xs.max() + 1 + margin), min(h, ys.max() + 1 + margin))


def _span(inside: torch.Tensor, margin: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, one past the last) index of the true entries of a bool vector, widened by ``margin`` and
    clipped; (n, 0) when there are none. Device scalars: nothing is read on the host."""
    n = inside.numel()
    index = torch.arange(n, device=inside.device)
    first = torch.where(inside, index, n).amin()
    last = torch.where(inside, index + 1, 0).amax()
    found = first < n
    return (torch.where(found, (first - margin).clamp(min=0), n),
            torch.where(found, (last + margin).clamp(max=n), 0))


def outline_box_mask(small_alpha: torch.Tensor, full: tuple[int, int], margin: int = MARGIN) -> torch.Tensor:
    """:func:`outline_box` of a working-size matte (1×1×h×w) carried to ``full`` = (W, H) as in
    :func:`_full_box`, as a bool 1×1×H×W mask on the device (all false with no outline)."""
    outline = (small_alpha[0, 0] > OUTLINE[0]) & (small_alpha[0, 0] < OUTLINE[1])
    (h, w), (W, H) = outline.shape, full
    (y0, y1), (x0, x1) = _span(outline.any(1), margin), _span(outline.any(0), margin)
    rows = torch.arange(H, device=outline.device)
    cols = torch.arange(W, device=outline.device)
    # Full-resolution pixel X lies in the box when floor(x0·W/w) ≤ X < ceil(x1·W/w), in exact integers.
    in_rows = (rows * h >= y0 * H - (y0 * H) % h) & (rows * h < y1 * H)
    in_cols = (cols * w >= x0 * W - (x0 * W) % w) & (cols * w < x1 * W)
    return (in_rows[:, None] & in_cols[None, :])[None, None]


def _full_box(box: tuple[int, int, int, int], small: tuple[int, int], full: tuple[int, int]):
    """The full-resolution box covering a working-size box (w, h sizes)."""
    sx, sy = full[0] / small[0], full[1] / small[1]
    x0, y0, x1, y1 = box
    return (math.floor(x0 * sx), math.floor(y0 * sy), min(full[0], math.ceil(x1 * sx)),
            min(full[1], math.ceil(y1 * sy)))


@register("blend", "learned", "a shallow U-Net that blends the person over the complete background, "
          "fixing halos and colour spill (Xing et al. 2022)",
          check=shipped_check(ARCHITECTURE, "no shipped blending weights found in weights/; pass --blend-weights PATH"))
class LearnedBlend(Blend):
    """The network's correction of linear blending, on the outline, carried to full resolution."""

    learned = True

    def __init__(self, device: str = "cpu", weights: str | os.PathLike | None = None, runtime: str = "torch") -> None:
        super().__init__(device, weights, runtime)
        path = weights_path(weights, ARCHITECTURE, "the learned blend has no weights: pass --blend-weights PATH "
                            "to a blending .safetensors, or use --blend defringe")
        self.net = BlendUNet.from_checkpoint(path).float().to(device)
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)

    @torch.inference_mode()
    def _delta(self, source: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """4×h×w correction of a working-size box (1×C×h×w inputs in [0,1])."""
        h, w = alpha.shape[-2:]
        corrections = self.onnx_networks.get("blend-unet", self.net.corrections)
        out = corrections(pad_to(source), pad_to(alpha), pad_to(background))
        return out[0, :, :h, :w]

    def blend(self, frame: Frame, matte: Matte, background, state: StreamState) -> Composite:
        if on_device(matte.alpha):
            return self._blend_tensor(frame, matte.alpha, background, matte.excluded_at(frame.size))
        rgb, alpha = frame.rgb, matte.alpha
        h, w = alpha.shape
        size = fit_long_side(w, h, WORK_LONG_SIDE)
        small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        box = outline_box(small_alpha)
        if box is None:
            return composite_linear(rgb, alpha, background)
        x0, y0, x1, y1 = box

        def crop(image: np.ndarray) -> torch.Tensor:
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)[y0:y1, x0:x1]
            t = torch.from_numpy(np.ascontiguousarray(small)).to(self.device).float()
            return (t.permute(2, 0, 1) / 255 if t.ndim == 3 else t[None])[None]

        delta = self._delta(crop(rgb), torch.from_numpy(small_alpha[y0:y1, x0:x1]).to(self.device)[None, None],
                            crop(background)).float().cpu().numpy().transpose(1, 2, 0)
        X0, Y0, X1, Y1 = _full_box(box, size, (w, h))
        up = cv2.resize(delta, (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_LINEAR)
        region = rgb[Y0:Y1, X0:X1]
        gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)
        d_alpha = fast_guided_filter(gray, np.ascontiguousarray(up[..., 0]), GUIDE_RADIUS, GUIDE_EPS, clip=False)
        band = mixed_band(alpha)
        excluded = matte.excluded_at((w, h))
        if excluded is not None:  # decided to be the background's: the net may not paint them back
            band &= ~excluded
        band = band[Y0:Y1, X0:X1].view(np.uint8)
        # Both corrections are copied into the band of copies of the matte and the frame (cv2.copyTo: a
        # one-channel mask serves the three-channel foreground).
        out_alpha = alpha.copy()
        cv2.copyTo(np.clip(alpha[Y0:Y1, X0:X1] + d_alpha, 0, 1), band, out_alpha[Y0:Y1, X0:X1])
        fg = rgb.copy()
        cv2.copyTo(np.clip(region + up[..., 1:] * 255 + 0.5, 0, 255).astype(np.uint8), band, fg[Y0:Y1, X0:X1])
        return composite_linear(fg, out_alpha, background)

    def _blend_tensor(self, frame: Frame, alpha: torch.Tensor, background: torch.Tensor,
                      excluded: torch.Tensor | None) -> Composite:
        """The device path: the same correction, decided without a round trip to the host.

        The box around the outline would need its corners on the host (a wait on the GPU every frame) and
        would give the network a new input size every frame. Here the network sees the whole working copy
        (one size per frame size) and the box is a mask on the device: outside it nothing changes, so with
        no outline in view the result is exactly linear blending, as on the host."""
        image = frame.pixels
        h, w = alpha.shape[-2:]
        size = fit_long_side(w, h, WORK_LONG_SIDE)
        small_alpha = resize(alpha, size)
        delta = self._delta(resize(image, size), small_alpha, resize(background, size))
        up = torch.nn.functional.interpolate(delta[None], size=(h, w), mode="bilinear", align_corners=False)
        d_alpha = fast_guided_filter_tensor(rgb_to_gray(image), up[:, :1], GUIDE_RADIUS, GUIDE_EPS, clip=False)
        band = mixed_band_tensor(alpha) & outline_box_mask(small_alpha, (w, h))
        if excluded is not None:
            band &= ~excluded
        out_alpha = torch.where(band, (alpha + d_alpha).clamp(0, 1), alpha)
        fg = torch.where(band, (image + up[:, 1:]).clamp(0, 1), image)
        return Composite(blend_linear_torch(fg, out_alpha, background), out_alpha, fg)

    def onnx_specs(self) -> list:
        image, matte = (1, 3, 128, 128), (1, 1, 128, 128)
        # The box around the outline changes size every frame: height and width are dynamic.
        return [OnnxSpec("blend-unet", _Corrections(self.net), (image, matte, image),
                         ("source", "alpha", "background"), ("corrections",), dynamic_size=(72, 100))]

    def close(self) -> None:
        self.net = None
        self.onnx_networks = {}


class _Corrections(torch.nn.Module):
    """The network's correction output alone (what the stage runs), as one exportable graph."""

    def __init__(self, net: BlendUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, source: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.net.corrections(source, alpha, background)
