"""pyvirtualcam test backends, registered with pyvirtualcam's public ``register_backend``.

The real ``pyvirtualcam.Camera`` runs on top of them (format checks, frame
counting, FPS measurement); only the device at the very end is in memory.
"""
from __future__ import annotations

import numpy as np

NO_DRIVER = ("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe v4l2loopback'? "
             "See also pyvirtualcam's documentation.")


class MemoryCamera:
    """Keeps the first and the last frame it was sent, and counts them."""

    instances: list["MemoryCamera"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "/dev/video-test"
        self.count = 0
        self.first: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.closed = False
        MemoryCamera.instances.append(self)

    def send(self, frame):
        self.last = np.array(frame, copy=True)
        self.first = self.last if self.first is None else self.first
        self.count += 1

    def close(self):
        self.closed = True

    def device(self):
        return self._device

    def native_fourcc(self):
        return None


class MissingDriver:
    """Fails like v4l2loopback on a machine without the kernel module."""

    def __init__(self, **kw):
        raise RuntimeError(NO_DRIVER)
