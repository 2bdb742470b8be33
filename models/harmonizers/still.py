"""Harmonizing one still composite with any harmonizer, through the same code as the video pipeline.

A still is a one-frame stream rendered deterministically: the harmonizer gets a
:class:`~models.blending.base.Composite` whose alpha is the mask, a fresh
file-mode :class:`~models.stream.StreamState`, and the complete background.
``harmonicam harmonize`` and the shared evaluation both call this.
"""
from __future__ import annotations

import numpy as np

from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.base import Harmonizer
from models.stream import StreamState


def harmonize_still(harmonizer: Harmonizer, composite: np.ndarray, mask: np.ndarray,
                    background: np.ndarray | None = None) -> np.ndarray:
    """The harmonized ``composite`` (uint8 H×W×3) for a soft ``mask`` (float32 H×W in [0,1]).

    ``background`` is the complete background behind the person (uint8, same size);
    without it, harmonizers that need one see the composite itself.
    """
    if composite.shape[:2] != mask.shape[:2]:
        raise ValueError(f"the mask is {mask.shape[1]}×{mask.shape[0]} but the composite is "
                         f"{composite.shape[1]}×{composite.shape[0]}")
    if background is not None and background.shape != composite.shape:
        raise ValueError(f"the background is {background.shape[1]}×{background.shape[0]} but the composite is "
                         f"{composite.shape[1]}×{composite.shape[0]}")
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    state = StreamState(live=False)
    try:
        return harmonizer.harmonize(Composite(composite, mask, composite), composite if background is None
                                    else background, Frame(composite, 0, 0.0), state)
    finally:
        state.close()
