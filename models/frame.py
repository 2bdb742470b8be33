"""The unit that flows through the pipeline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One RGB uint8 H×W×3 image with its position in the stream.

    ``timestamp`` is in seconds: media time for files, capture time for live
    sources. Temporal filters use it so that they behave the same at any rate.
    """

    rgb: np.ndarray
    index: int
    timestamp: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]
