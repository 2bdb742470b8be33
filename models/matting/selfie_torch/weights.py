"""Where the selfie segmenter's converted weights come from.

In order: a file the user names (``--matting-model``: a converted ``.safetensors``, or a
selfie ``.tflite`` converted on the spot); the folder in ``HARMONICAM_SELFIE_WEIGHTS``,
holding ``selfie-general.safetensors`` and/or ``selfie-landscape.safetensors`` as written by
``python -m models.matting.selfie_torch.convert`` (for a machine without mediapipe);
else the model bundled in the installed mediapipe, converted on first use and cached in
the app's cache folder under a name carrying the SHA-256 of the ``.tflite`` (so a new
mediapipe converts again).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from models.matting.base import MattingModelError
from models.matting.mediapipe_selfie import bundled_model
from models.matting.selfie_torch.convert import write
from models.paths import cache_dir

#: The environment variable naming a folder of converted weights.
ENV = "HARMONICAM_SELFIE_WEIGHTS"
CONVERT = "python -m models.matting.selfie_torch.convert --variant {variant} --out {file}"


def file_name(variant: str) -> str:
    """The name a converted file has in the ``HARMONICAM_SELFIE_WEIGHTS`` folder."""
    return f"selfie-{variant}.safetensors"


def _from_environment(variant: str) -> Path | None:
    folder = os.environ.get(ENV)
    return Path(folder) / file_name(variant) if folder else None


def missing_reason(variant: str) -> str | None:
    """None when weights for ``variant`` can be found without a file named by the user, else why not."""
    path = _from_environment(variant)
    if path is not None:
        return None if path.is_file() else f"{ENV} names {path.parent}, which holds no {path.name}"
    if bundled_model(variant) is None:
        command = CONVERT.format(variant=variant, file=file_name(variant))
        return (f"no converted weights: run '{command}' where mediapipe is installed, "
                f"then pass --matting-model FILE or set {ENV} to its folder")
    return None


def cached_conversion(tflite: Path, variant: str) -> Path:
    """The cached safetensors of ``tflite``, converted and written there (atomically) when missing."""
    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:16]
    path = cache_dir() / "selfie" / f"selfie-{variant}-{digest}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tflite, path)
    return path


def find_weights(variant: str, model_path: str | os.PathLike | None = None) -> Path:
    """The weights file for ``variant`` (see the module's docstring); a MattingModelError saying what to do."""
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise MattingModelError(f"matting model {path} does not exist; check the path")
        return path
    reason = missing_reason(variant)
    if reason is not None:
        raise MattingModelError(f"the selfie-torch matting has {reason}")
    return _from_environment(variant) or cached_conversion(bundled_model(variant), variant)
