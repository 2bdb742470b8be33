"""The harmonizer interface shared by every harmonization method."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.frame import Frame


@dataclass
class StreamState:
    """Per-stream harmonizer state: EMA buffers, cached background statistics, workers.

    The pipeline makes a fresh one whenever the source or the background
    changes, so nothing from an old stream leaks into a new one.
    """

    background_version: int = -1
    #: Live streams (cameras, real-time outputs) must never wait for slow work;
    #: file-to-file streams must render deterministically.
    live: bool = True
    data: dict[str, Any] = field(default_factory=dict)


class Harmonizer(abc.ABC):
    """Adjusts the composited foreground so that it matches the background."""

    def __init__(self, strength: float = 1.0, device: str = "cpu") -> None:
        self.strength = strength
        self.device = device

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = float(min(1.0, max(0.0, value)))

    @abc.abstractmethod
    def harmonize(self, composite: np.ndarray, alpha: np.ndarray, background: np.ndarray,
                  frame: Frame, state: StreamState) -> np.ndarray:
        """Return the harmonized composite (uint8 H×W×3, full resolution)."""

    def close(self, state: StreamState | None = None) -> None:
        """Stop any worker owned by ``state`` (or by the harmonizer)."""
