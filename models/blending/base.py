"""The blending interface: frame + alpha + complete background -> composite."""
from __future__ import annotations

import abc

import numpy as np


class Blend(abc.ABC):
    @abc.abstractmethod
    def composite(self, frame: np.ndarray, alpha: np.ndarray, background: np.ndarray,
                  foreground: np.ndarray | None = None) -> np.ndarray:
        """uint8 H×W×3 composite; ``foreground`` (e.g. RVM ``fgr``) replaces the frame's colour."""
