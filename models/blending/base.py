"""The blending contract: frame + matte + complete background → composite.

A blend is a model like the others: it is created through the registry with a
device and optional weights, keeps per-stream state in a
:class:`~models.stream.StreamState`, and is closed. It returns a
:class:`Composite` that carries the alpha and foreground it actually used, so
the harmonizer works with the refined matte, not the raw one.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass

import numpy as np

from models.frame import Frame, Image
from models.matting.base import Matte
from models.stream import StreamState


@dataclass(frozen=True)
class Composite:
    """The blended image with the matte and foreground colour that made it.

    Host path: ``image`` uint8 H×W×3, ``alpha`` float32 H×W, ``foreground``
    uint8 H×W×3. Device path: float32 1×3×H×W, 1×1×H×W and 1×3×H×W tensors.
    """

    image: Image
    alpha: Image
    foreground: Image
    #: Each row's span of α > 0 (int64 H×2, :func:`~models.ops.compiled.alpha_spans`) where the blend found it
    #: (the host path with Numba): the filters work the same spans, without a second scan of α.
    spans: np.ndarray | None = None


class Blend(abc.ABC):
    """Composites the person over the complete background."""

    #: Whether the method has learned weights (``--blend-weights``).
    learned = False

    def __init__(self, device: str = "cpu", weights: str | os.PathLike | None = None, runtime: str = "torch") -> None:
        if weights is not None and not self.learned:
            raise ValueError(f"the {type(self).__name__} blend has no weights; drop --blend-weights")
        self.device = device
        self.weights = weights
        #: What runs the learned network, "torch" or "onnxruntime" (blends without one ignore it).
        self.runtime = runtime

    @abc.abstractmethod
    def blend(self, frame: Frame, matte: Matte, background: Image, state: StreamState) -> Composite:
        """The composite of ``frame`` over ``background`` (both where the frame's image lives)."""

    def close(self) -> None:
        """Release weights and runtimes (per-stream state is closed by the pipeline)."""
