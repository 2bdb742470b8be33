"""The unit that flows through the pipeline, and where its pixels live.

On a CPU every image is a NumPy array (RGB ``uint8`` H×W×3, alpha ``float32``
H×W). On a CUDA device the frame is uploaded once after capture and every
stage works on torch tensors there (RGB ``float32`` 1×3×H×W in [0,1], alpha
1×1×H×W); the result is downloaded once before the sinks. Stages tell the two
apart by the type of what they receive (:func:`on_device`), so the tensor path
also runs, and is tested, on CPU tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import cv2
import numpy as np
import torch

from models.ops.sizes import fit_long_side

#: A picture or a matte, in host memory (NumPy) or on a device (torch).
Image = Union[np.ndarray, torch.Tensor]


def on_device(image: Image | None) -> bool:
    """True for the tensor (device) representation, False for NumPy."""
    return isinstance(image, torch.Tensor)


@dataclass(frozen=True)
class Frame:
    """One captured RGB image with its position in the stream.

    ``rgb`` is the capture in host memory (uint8 H×W×3); it stays available on
    every path because CPU-only models (MediaPipe) read a small copy of it.
    ``pixels`` is the same image on the pipeline's device (float32 1×3×H×W in
    [0,1]), or None when the pipeline runs on the CPU.
    ``timestamp`` is in seconds: media time for files, capture time for live
    sources. Temporal filters use it so that they behave the same at any rate.
    """

    rgb: np.ndarray
    index: int
    timestamp: float
    pixels: torch.Tensor | None = None
    #: Small copies of ``rgb`` by long side (see :meth:`scaled`); filled as stages ask for them.
    _copies: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def image(self) -> Image:
        """The frame where the pipeline works on it: the device tensor, else the host array."""
        return self.rgb if self.pixels is None else self.pixels

    def scaled(self, long_side: int) -> np.ndarray:
        """``rgb`` shrunk (area averaging) to at most ``long_side`` across, made once per frame.

        Several stages read small copies of the same frame (the matting model's input, the
        matte's colour guide, the defringe passes); each copy is made from the smallest one
        already made that is larger, so the full frame is read once. Copies are read-only:
        every stage shares them.
        """
        w, h = self.size
        if max(w, h) <= long_side:
            return self.rgb
        copy = self._copies.get(long_side)
        if copy is None:
            larger = [side for side in self._copies if side > long_side]
            source = self._copies[min(larger)] if larger else self.rgb
            copy = cv2.resize(source, fit_long_side(w, h, long_side), interpolation=cv2.INTER_AREA)
            copy.flags.writeable = False
            self._copies[long_side] = copy
        return copy
