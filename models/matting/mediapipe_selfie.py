"""MediaPipe selfie segmentation through the Tasks ``ImageSegmenter`` API.

The two legacy models (general 256×256, landscape 144×256) ship inside the
installed ``mediapipe`` wheel (≤ 0.10.21), so matting works offline. Later
mediapipe releases ship no models; they only need ``model_path``.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from models.frame import Frame, on_device
from models.matting.base import Matte, Matting, MattingModelError
from models.ops.native_logs import quiet_native_logs
from models.ops.tensor_image import alpha_tensor, enlarge, resize
from models.registry import register

WORK_LONG_SIDE = 640

VARIANTS = {
    "general": "selfie_segmentation.tflite",
    "landscape": "selfie_segmentation_landscape.tflite",
}


def bundled_model(variant: str) -> Path | None:
    """Path of the ``.tflite`` bundled in the installed mediapipe, if any."""
    try:
        import mediapipe
    except ImportError:
        return None
    path = Path(mediapipe.__file__).parent / "modules" / "selfie_segmentation" / VARIANTS[variant]
    return path if path.is_file() else None


def _check() -> str | None:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return "the mediapipe package is not installed"
    if bundled_model("general") is None:
        return "this mediapipe ships no selfie model; pass --matting-model PATH to a selfie .tflite"
    return None


@register("matting", "mediapipe", "MediaPipe selfie segmentation (bundled model, CPU)", check=_check)
class MediaPipeSelfie(Matting):
    """Person probability from MediaPipe's selfie segmenter."""

    provider = "mediapipe-xnnpack"

    def __init__(self, variant: str = "general", model_path: str | os.PathLike | None = None,
                 device: str = "cpu") -> None:
        # MediaPipe runs on the CPU whatever ``device`` is; on a device path only its small mask is uploaded.
        if variant not in VARIANTS:
            raise MattingModelError(f"unknown MediaPipe variant {variant!r}; use one of {', '.join(VARIANTS)}")
        path = Path(model_path) if model_path else bundled_model(variant)
        if path is None:
            raise MattingModelError("this mediapipe ships no selfie model; pass --matting-model PATH "
                                    "to a selfie segmentation .tflite file")
        if not path.is_file():
            raise MattingModelError(f"matting model {path} does not exist; check the path")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_buffer=path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        try:
            with quiet_native_logs():
                self._segmenter = vision.ImageSegmenter.create_from_options(options)
                # The delegate logs on first use: the selfie model's own call, not what a subclass joins to it.
                MediaPipeSelfie.segment(self, np.zeros((64, 64, 3), np.uint8))
        except (RuntimeError, ValueError) as exc:
            raise MattingModelError(f"{path} is not a MediaPipe segmentation model ({exc})") from None
        self.model_path = path

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        """Person confidence (float32, the size of ``rgb``); MediaPipe resizes ``rgb`` to the model's input and the
        mask back."""
        import mediapipe as mp

        result = self._segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        # Person confidence; 0.10.21 returns (H, W), newer releases (H, W, 1).
        return np.asarray(result.confidence_masks[0].numpy_view(), dtype=np.float32).reshape(rgb.shape[:2])

    def coarse(self, frame: Frame) -> Matte:
        # The model sees 256 pixels across: a 640-pixel copy loses nothing and spares
        # MediaPipe resizing a full HD frame and upsampling its mask back to it.
        mask = self.segment(frame.scaled(WORK_LONG_SIDE))
        if frame.pixels is not None:  # upload the small mask, enlarge it on the device
            return Matte(alpha=resize(alpha_tensor(mask, frame.pixels.device), frame.size))
        return Matte(alpha=mask)

    def matte(self, frame: Frame) -> Matte:
        matte = self.coarse(frame)
        return matte if on_device(matte.alpha) else Matte(alpha=enlarge(matte.alpha, frame.size))

    def close(self) -> None:
        self._segmenter.close()


register("matting", "mediapipe-landscape", "MediaPipe selfie segmentation, landscape 144×256 model (faster)",
         check=_check)(functools.partial(MediaPipeSelfie, variant="landscape"))
