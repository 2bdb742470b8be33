"""Matting backends; importing this package registers them."""
from models.matting import (
    mediapipe_auto,  # noqa: F401
    mediapipe_body,  # noqa: F401
    mediapipe_selfie,  # noqa: F401
    onnx_matting,  # noqa: F401
)
from models.matting.selfie_torch import stage as selfie_torch_stage  # noqa: F401
from models.matting.base import Matte, Matting, MattingModelError

#: The app's matting: the selfie model, joined by the pose model while a whole body is in view
#: (:mod:`models.matting.mediapipe_auto`).
DEFAULT_MATTING = "mediapipe-auto"

__all__ = ["DEFAULT_MATTING", "Matte", "Matting", "MattingModelError"]
