"""``selfie-torch``: MediaPipe's selfie segmentation run by torch (or ONNX Runtime) instead of MediaPipe.

The same network and weights as the ``mediapipe`` matting (:mod:`models.matting.mediapipe_selfie`),
the same way in and out (:mod:`models.matting.selfie_torch.resampling`) and the same working
copy (long side 640), so the matte is MediaPipe's; but it runs where the pipeline's tensors
live — on a CUDA device the frame never leaves it — and it can be exported to ONNX and trained.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from models.frame import Frame
from models.matting.base import Matte, Matting, MattingModelError
from models.matting.selfie_torch.convert import convert
from models.matting.mediapipe_selfie import VARIANTS, WORK_LONG_SIDE
from models.matting.selfie_torch.network import SIZE_MULTIPLE, SelfieSegmenter
from models.matting.selfie_torch.resampling import (mask_to_size, mask_to_size_tensor, model_input, model_input_host,
                                                    working_copy)
from models.matting.selfie_torch.tflite import TfliteError, is_tflite
from models.matting.selfie_torch.weights import find_weights, missing_reason
from models.ops.checkpoint import CheckpointError, load_state_dict_file, load_strict, stored_options
from models.ops.onnx_export import OnnxSpec
from models.ops.onnx_runtime import runtime_networks
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import upload
from models.registry import register

#: The models' input (width, height), used for a weights file that does not say.
INPUT_SIZES = {"general": (256, 256), "landscape": (256, 144)}


def load_network(path: Path, variant: str) -> tuple[SelfieSegmenter, tuple[int, int]]:
    """The network with the weights in ``path`` (converted safetensors, or a selfie ``.tflite``) and its
    input (width, height); a MattingModelError when the file does not fit."""
    with path.open("rb") as f:
        head = f.read(8)
    if is_tflite(head):
        try:
            return convert(path)
        except TfliteError as exc:
            raise MattingModelError(f"{path} cannot be used by selfie-torch: {exc}") from None
    network = SelfieSegmenter()
    try:
        load_strict(network, load_state_dict_file(path, "selfie segmentation weights"), "selfie segmenter", path)
        size = stored_options(path, {"width": int, "height": int}, "selfie segmentation weights",
                              "models.matting.selfie_torch.convert")
    except CheckpointError as exc:
        raise MattingModelError(str(exc)) from None
    width, height = size.get("width", INPUT_SIZES[variant][0]), size.get("height", INPUT_SIZES[variant][1])
    if width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise MattingModelError(f"{path} says its input is {width}×{height}, not a multiple of {SIZE_MULTIPLE}; "
                                "convert the weights again")
    return network.eval(), (width, height)


@register("matting", "selfie-torch", "MediaPipe's selfie segmentation (general 256×256) ported to torch: "
          "CPU or CUDA, ONNX Runtime", check=functools.partial(missing_reason, "general"))
class TorchSelfie(Matting):
    """Person probability from the selfie segmenter on torch (``runtime="onnxruntime"``: ONNX Runtime)."""

    def __init__(self, variant: str = "general", model_path: str | os.PathLike | None = None,
                 device: str = "cpu", runtime: str = "torch") -> None:
        if variant not in VARIANTS:
            raise MattingModelError(f"unknown selfie variant {variant!r}; use one of {', '.join(VARIANTS)}")
        self.model_path = find_weights(variant, model_path)
        network, self.input_size = load_network(self.model_path, variant)
        self.variant = variant
        self.device = torch.device(device)
        self.network = network.to(self.device)
        self.onnx_networks = runtime_networks(self.onnx_specs(), runtime, device)
        onnx = self.onnx_networks.get(self._spec_name)
        self.provider = onnx.provider if onnx is not None else f"torch-{self.device.type}"

    @property
    def _spec_name(self) -> str:
        return f"selfie-{self.variant}"

    @torch.inference_mode()
    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """The model's 1×3×h×w input → its 1×1×h×w mask."""
        return self.onnx_networks.get(self._spec_name, self.network)(x)

    def matte(self, frame: Frame) -> Matte:
        # Like the mediapipe matting: the model sees a 640-pixel copy (made by area averaging), its mask
        # is enlarged to that copy (MediaPipe's step), then to the frame.
        w, h = frame.size
        small = fit_long_side(w, h, WORK_LONG_SIDE) if max(w, h) > WORK_LONG_SIDE else (w, h)
        if frame.pixels is not None:
            pixels = frame.pixels.to(self.device)
            mask = self._mask(model_input(working_copy(pixels, small), self.input_size))
            alpha = mask_to_size_tensor(mask_to_size_tensor(mask, small), (w, h))
            return Matte(alpha=alpha.to(frame.pixels.device))
        # OpenCV's remap gives the same bytes as model_input in a tenth of the time on a CPU.
        x = upload(model_input_host(frame.scaled(WORK_LONG_SIDE), self.input_size), self.device)
        mask = self._mask(x)[0, 0].float().cpu().numpy()
        alpha = mask_to_size(mask_to_size(mask, small), (w, h))
        return Matte(alpha=alpha)

    def onnx_specs(self) -> list:
        width, height = self.input_size
        return [OnnxSpec(self._spec_name, self.network, ((1, 3, height, width),), ("image",), ("mask",))]

    def close(self) -> None:
        self.network = None
        self.onnx_networks = {}


register("matting", "selfie-torch-landscape", "MediaPipe's selfie segmentation, landscape 144×256 model, "
         "ported to torch", check=functools.partial(missing_reason, "landscape"))(
    functools.partial(TorchSelfie, variant="landscape"))
