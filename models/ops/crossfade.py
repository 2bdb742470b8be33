"""Mixing two pictures of the same frame: how one look eases into another."""
from __future__ import annotations

import cv2
import torch

from models.frame import Image, on_device


def crossfade(old: Image, new: Image, weight: float) -> Image:
    """``(1 − weight)·old + weight·new`` for uint8 H×W×3 arrays or float tensors alike."""
    weight = min(1.0, max(0.0, weight))
    if on_device(new):
        return torch.lerp(old, new, weight)
    return cv2.addWeighted(old, 1.0 - weight, new, weight, 0.0)
