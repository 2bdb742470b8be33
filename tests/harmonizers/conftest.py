"""Real portraits for the harmonizer tests."""
from __future__ import annotations

import numpy as np
import pytest

from models import registry
from models.frame import Frame
from models.harmonizers.realtime import shrink
from models.training.synthesis import complete_background


@pytest.fixture(scope="session")
def portraits(astronaut, grace_hopper):
    """(photo, MediaPipe person mask, complete background) at 256²; Grace Hopper is in the held-out split."""
    matting = registry.create("matting", "mediapipe")
    out = []
    for photo in (astronaut, grace_hopper):
        small = shrink(photo, 256)
        mask = np.array(matting.matte(Frame(small, 0, 0.0)).alpha)  # a writable copy
        out.append((small, mask, complete_background(small, mask)))
    matting.close()
    return out
