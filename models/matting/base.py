"""The matting interface: a soft alpha for exactly the frame that is composited."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch

from models.frame import Frame
from models.ops.tensor_image import resize_mask


@dataclass(frozen=True)
class Matte:
    """Alpha (float32 H×W in [0,1]) and, when the model predicts it, foreground colour."""

    alpha: np.ndarray
    foreground: np.ndarray | None = None  # uint8 H×W×3, e.g. RVM's ``fgr``
    #: The matte post-processing has decided its islands (:mod:`models.matting.confidence`, or the
    #: opt-in :mod:`models.matting.solidify`): none are left for a blend to remove.
    decided: bool = False
    #: Pixels decided to be the background's whatever their colour (bool h×w at the matte decision's
    #: working size, or 1×1×h×w on the device; None when there are none): straight background bars
    #: running into the person's edge (:mod:`models.matting.background_bars`). A blend leaves their α
    #: as it is; :meth:`excluded_at` gives them at the frame's size, for the blends that need them.
    excluded: np.ndarray | torch.Tensor | None = None

    def excluded_at(self, size: tuple[int, int]) -> np.ndarray | torch.Tensor | None:
        """:attr:`excluded` enlarged to ``size`` = (width, height) by nearest neighbour; None if none."""
        return None if self.excluded is None else resize_mask(self.excluded, size)


class Matting(abc.ABC):
    """A matting backend. ``matte(frame)`` always answers for that same frame."""

    #: The runtime that actually runs the model (shown in reports and the GUI).
    provider: str = "cpu"
    #: Frames come in real time (set by the stream): periodic work beside the model may then run on a worker.
    live: bool = False

    @abc.abstractmethod
    def matte(self, frame: Frame) -> Matte:
        """Predict the matte of ``frame`` at its full size."""

    def coarse(self, frame: Frame) -> Matte:
        """The matte of ``frame`` at the size the model answers at (at most the frame's, same aspect):
        :meth:`matte` before its enlargement. The stream's post-processing works at this size and enlarges
        once, at the end (:class:`~models.matting.postprocess.MattePostprocess`)."""
        return self.matte(frame)

    def reset(self) -> None:
        """Forget temporal state (new source, resolution or scene)."""

    def close(self) -> None:
        """Release the runtime."""


class MattingModelError(ValueError):
    """A user-supplied model file that cannot be used; the message says why."""
