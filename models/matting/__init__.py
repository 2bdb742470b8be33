"""Matting backends; importing this package registers them."""
from models.matting import (
    mediapipe_body,  # noqa: F401
    mediapipe_selfie,  # noqa: F401
    onnx_matting,  # noqa: F401
)
from models.matting.selfie_torch import stage as selfie_torch_stage  # noqa: F401
from models.matting.base import Matte, Matting, MattingModelError

__all__ = ["Matte", "Matting", "MattingModelError"]
