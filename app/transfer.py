"""The frame's two trips across the bus on a device path: one upload after capture, one download before the sinks.

The upload goes from page-locked (pinned) host memory and does not wait
(:func:`models.ops.tensor_image.upload`). The download converts the output to bytes on the
device, copies them into one of a few pinned host buffers without waiting, and marks the
copy's end with an event: :meth:`FrameTransfer.download` returns at once with a
:class:`PendingOutput`, and only :meth:`PendingOutput.result` waits. A frame loop that asks
for frame t's output after it has queued frame t+1's work keeps the GPU busy while the host
waits, and the wait is usually over before it starts (the copy ran behind frame t's work).

With CPU tensors (the tests' device path) every step is a plain copy and nothing waits.
"""
from __future__ import annotations

import numpy as np
import torch

from models.ops.tensor_image import to_bytes, upload

#: Pinned output buffers, used in turn: the one being filled, the one the sinks read, one spare for a
#: consumer (the preview) that holds an output one frame longer.
SLOTS = 3


class PendingOutput:
    """An output on its way to the host: :meth:`result` waits for the copy (if it is still running)."""

    def __init__(self, array: np.ndarray, done: torch.cuda.Event | None) -> None:
        self._array = array
        self._done = done

    def ready(self) -> bool:
        """Whether the copy has finished (never waits)."""
        return self._done is None or self._done.query()

    def result(self) -> np.ndarray:
        """The output, uint8 H×W×3 in pinned host memory. It is valid until :data:`SLOTS` more downloads have
        been started; copy it to keep it longer."""
        if self._done is not None:
            self._done.synchronize()
            self._done = None
        return self._array


class FrameTransfer:
    """Uploads captured frames to ``device`` and downloads outputs from it, neither of them waiting."""

    def __init__(self, device: str | torch.device, slots: int = SLOTS) -> None:
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        self._slots: list[tuple[torch.Tensor, np.ndarray]] = []
        self._count = slots
        self._next = 0

    def upload(self, rgb: np.ndarray) -> torch.Tensor:
        """uint8 H×W×3 → float32 1×3×H×W in [0,1] on the device (queued; the host does not wait)."""
        return upload(rgb, self.device)

    def _slot(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
        """The next host buffer in turn, made (again) when the output size changes."""
        if not self._slots or tuple(self._slots[0][0].shape) != shape:
            buffers = [torch.empty(shape, dtype=torch.uint8, pin_memory=self._cuda) for _ in range(self._count)]
            # The NumPy views are made once here: a view made per frame would be one more call per frame.
            self._slots = [(b, b.numpy()) for b in buffers]
            self._next = 0
        slot = self._slots[self._next]
        self._next = (self._next + 1) % len(self._slots)
        return slot

    def download(self, image: torch.Tensor) -> PendingOutput:
        """Start copying ``image`` (1×3×H×W in [0,1]) to the host as uint8 H×W×3, rounded to nearest: the one
        device-to-host copy of a frame. Returns at once."""
        pixels = to_bytes(image)
        host, array = self._slot(tuple(pixels.shape))
        host.copy_(pixels, non_blocking=self._cuda)
        done = None
        if self._cuda:
            done = torch.cuda.Event()
            done.record()
        return PendingOutput(array, done)
