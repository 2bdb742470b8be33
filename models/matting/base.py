"""The matting interface: a soft alpha for exactly the frame that is composited."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch

from models.frame import Frame


@dataclass(frozen=True)
class Matte:
    """Alpha (float32 H×W in [0,1]) and, when the model predicts it, foreground colour."""

    alpha: np.ndarray
    foreground: np.ndarray | None = None  # uint8 H×W×3, e.g. RVM's ``fgr``
    #: The person's regions were decided by :mod:`models.matting.solidify`: no stray islands are left
    #: for a blend to remove.
    decided: bool = False
    #: Pixels decided to be the background's whatever their colour (bool H×W, or 1×1×H×W on the device;
    #: None when there are none): straight background bars running into the person's edge
    #: (:mod:`models.matting.background_bars`). A blend leaves their α as it is.
    excluded: np.ndarray | torch.Tensor | None = None


class Matting(abc.ABC):
    """A matting backend. ``matte(frame)`` always answers for that same frame."""

    #: The runtime that actually runs the model (shown in reports and the GUI).
    provider: str = "cpu"

    @abc.abstractmethod
    def matte(self, frame: Frame) -> Matte:
        """Predict the matte of ``frame`` at its full size."""

    def reset(self) -> None:
        """Forget temporal state (new source, resolution or scene)."""

    def close(self) -> None:
        """Release the runtime."""


class MattingModelError(ValueError):
    """A user-supplied model file that cannot be used; the message says why."""
