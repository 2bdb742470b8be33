"""A pyvirtualcam test backend, registered with pyvirtualcam's public API.

The real ``pyvirtualcam.Camera`` runs on top of it (format checks, frame
counting, FPS measurement); only the device at the very end is in memory.
"""
from __future__ import annotations

import numpy as np
import pytest
import pyvirtualcam
import pyvirtualcam.camera


class MemoryBackend:
    instances: list["MemoryBackend"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "/dev/memory0"
        self.frames: list[np.ndarray] = []
        self.closed = False
        MemoryBackend.instances.append(self)

    def send(self, frame):
        self.frames.append(np.array(frame, copy=True))

    def close(self):
        self.closed = True

    def device(self):
        return self._device

    def native_fourcc(self):
        return None


class NoDriverBackend:
    def __init__(self, **kw):
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe v4l2loopback'?")


@pytest.fixture
def memory_vcam(monkeypatch):
    """Registers the memory backend (and only it) for the duration of a test."""
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    pyvirtualcam.register_backend("memory", MemoryBackend)
    MemoryBackend.instances.clear()
    return MemoryBackend


@pytest.fixture
def no_driver_vcam(monkeypatch):
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    pyvirtualcam.register_backend("v4l2loopback", NoDriverBackend)
