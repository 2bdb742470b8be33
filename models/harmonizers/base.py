"""The harmonizer contract shared by every harmonization method.

``harmonize(composite, background, frame, state)`` returns the harmonized
image where the composite lives (NumPy on the CPU path, a device tensor on
the device path). It works with the composite's own alpha, i.e. the refined
matte the blend used. Per-stream work (smoothed transforms, background caches,
prediction workers) lives in ``state``; the model instance holds only weights.
"""
from __future__ import annotations

import abc

from models.blending.base import Composite
from models.frame import Frame, Image
from models.stream import StreamState


class Harmonizer(abc.ABC):
    """Adjusts the composited foreground so that it matches the background."""

    def __init__(self, strength: float = 1.0, device: str = "cpu", runtime: str = "torch") -> None:
        self.strength = strength
        self.device = device
        #: What runs the learned networks, "torch" or "onnxruntime" (methods without one ignore it).
        self.runtime = runtime
        #: Whether the person may be darkened or flattened only as far as the background justifies
        #: (:mod:`models.harmonizers.keep_bright`; applied by the shared machinery, changeable at any time).
        self.keep_bright = True

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = float(min(1.0, max(0.0, value)))

    @abc.abstractmethod
    def harmonize(self, composite: Composite, background: Image, frame: Frame, state: StreamState) -> Image:
        """The harmonized composite at full resolution."""

    def ready(self, state: StreamState) -> bool:
        """Whether the stream already has the look this harmonizer will show (crossfades wait for it)."""
        return True

    def background_changed(self, state: StreamState) -> None:
        """The user picked another background: drop what was derived from the old one, keep the smoothing
        so that the look eases to the new scene."""

    def onnx_specs(self) -> list:
        """The networks ``harmonicam export-onnx`` writes for this method (see
        :mod:`models.ops.onnx_export`); none for methods without one."""
        return []

    def close(self) -> None:
        """Release weights and runtimes (per-stream state is closed by the pipeline)."""
