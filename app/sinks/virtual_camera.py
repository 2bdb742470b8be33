"""The virtual webcam (pyvirtualcam): v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS.

When no backend opens, ``VirtualCameraError`` carries one sentence with the
fix for this OS (the "virtual camera doctor"), plus pyvirtualcam's own detail.
"""
from __future__ import annotations

import platform

import numpy as np

from app.errors import RuntimeFailure, UsageError
from app.sinks.base import Sink

DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 30.0

LINUX_FIX = ("load the loopback driver with 'sudo modprobe v4l2loopback exclusive_caps=1 "
             "card_label=Harmonicam' (Debian/Ubuntu: install v4l2loopback-dkms first)")
FIXES = {
    "Linux": LINUX_FIX,
    "Windows": "install OBS Studio, then click 'Start Virtual Camera' in OBS once and stop it again",
    "Darwin": ("install OBS Studio 30 or newer, click 'Start Virtual Camera' once and allow its system "
               "extension in System Settings (a restart may be needed)"),
}
PERMISSION_FIX = ("add yourself to the video group with 'sudo usermod -aG video $USER', then log out and in "
                  "again")


class VirtualCameraError(RuntimeFailure):
    """No virtual-camera backend could be opened."""

    def __init__(self, detail: str, system: str | None = None) -> None:
        self.detail = detail.strip()
        self.fix = diagnose(self.detail, system)
        super().__init__(f"the virtual camera could not start; to fix it, {self.fix}."
                         + (f" (pyvirtualcam: {self.detail.splitlines()[0]})" if self.detail else ""))


def diagnose(detail: str, system: str | None = None) -> str:
    """The OS-specific fix for a pyvirtualcam failure message."""
    system = system or platform.system()
    lowered = detail.lower()
    if "permission" in lowered:
        return PERMISSION_FIX
    if "already in use" in lowered or "multiple cameras" in lowered:
        return "close the other program (or Harmonicam window) that is already sending to the virtual camera"
    if "does not exist" in lowered and system == "Linux":
        return f"pick an existing loopback device with --vcam-device, or {LINUX_FIX}"
    return FIXES.get(system, "use Linux (v4l2loopback), Windows or macOS (OBS Virtual Camera)")


def backends() -> list[str]:
    """Names of the pyvirtualcam backends registered on this OS."""
    import pyvirtualcam.camera

    return list(pyvirtualcam.camera.BACKENDS)


class VirtualCameraSink(Sink):
    """Publishes frames as a webcam. Not mirrored: conferencing apps mirror only the self-view."""

    realtime = True

    def __init__(self, backend: str | None = None, device: str | None = None) -> None:
        if backend is not None and backend not in backends():
            raise UsageError(f"--vcam-backend {backend!r} is not available here; choose one of: "
                             f"{', '.join(backends()) or 'none on this OS'}")
        self.backend = backend
        self.device = device
        self.camera = None
        self.description = "virtual camera"

    def open(self, size, fps):
        import pyvirtualcam

        w, h = size
        if w % 2:
            raise UsageError(f"the virtual camera needs an even width (got {w}); pick e.g. --resolution 1280x720")
        try:
            self.camera = pyvirtualcam.Camera(w, h, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                              backend=self.backend, device=self.device)
        except RuntimeError as exc:
            raise VirtualCameraError(str(exc)) from None
        self.description = f"virtual camera {self.camera.device} ({self.camera.backend})"

    def send(self, rgb: np.ndarray) -> None:
        self.camera.send(np.ascontiguousarray(rgb))

    @property
    def frames_sent(self) -> int:
        return self.camera.frames_sent if self.camera else 0

    @property
    def current_fps(self) -> float:
        return self.camera.current_fps if self.camera else 0.0

    def close(self, success: bool = True) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None
