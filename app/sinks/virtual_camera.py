"""The virtual webcam (pyvirtualcam): v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS.

When no backend opens, ``VirtualCameraError`` carries one sentence with the
fix for this OS (the "virtual camera doctor"), plus pyvirtualcam's own detail.
"""
from __future__ import annotations

import logging
import platform
import time
from typing import Callable

import numpy as np

from app.errors import HarmonicamError, RuntimeFailure, UsageError
from app.sinks.base import Sink
from app.sinks.readers import DeviceReaders

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 720)
#: How often ``harmonicam run`` tries to re-open a virtual camera that went away.
RECONNECT_S = 2.0
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
    """Publishes frames as a webcam. Not mirrored: conferencing apps mirror only the self-view.

    With ``reconnect_s``, a device that disappears or is taken while running is
    reported once and re-opened every ``reconnect_s`` seconds (frames meanwhile are
    dropped), so a long call survives a driver reload; without it, ``send`` raises.
    ``readers()`` counts the apps that have the device open (v4l2loopback on Linux;
    None elsewhere and while the device is lost), so the stream can pause while
    nobody watches.
    """

    realtime = True

    def __init__(self, backend: str | None = None, device: str | None = None,
                 reconnect_s: float | None = None, on_status: Callable[[str], None] | None = None) -> None:
        if backend is not None and backend not in backends():
            raise UsageError(f"--vcam-backend {backend!r} is not available here; choose one of: "
                             f"{', '.join(backends()) or 'none on this OS'}")
        self.backend = backend
        self.device = device
        self.camera = None
        self.description = "virtual camera"
        self.reconnect_s = reconnect_s
        self._on_status = on_status or (lambda text: log.warning("%s", text))
        self._format: tuple[tuple[int, int], float] | None = None
        self._retry_at: float | None = None  # set while the device is lost
        self._readers: DeviceReaders | None = None

    def open(self, size, fps):
        import pyvirtualcam

        w, h = size
        if w % 2:
            raise UsageError(f"the virtual camera needs an even width (got {w}); pick e.g. --resolution 1280x720")
        self._format = (size, fps)
        try:
            self.camera = pyvirtualcam.Camera(w, h, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                              backend=self.backend, device=self.device)
        except RuntimeError as exc:
            raise VirtualCameraError(str(exc)) from None
        self.description = f"virtual camera {self.camera.device} ({self.camera.backend})"
        # Started after pyvirtualcam opened the device, so our own handle is not counted.
        self._stop_counting()
        self._readers = DeviceReaders(self.camera.device)

    def readers(self) -> int | None:
        watch = self._readers
        return watch.poll() if watch is not None else None

    def _stop_counting(self) -> None:
        watch, self._readers = self._readers, None
        if watch is not None:
            watch.close()

    def send(self, rgb: np.ndarray) -> None:
        if self._retry_at is not None and not self._reopen():
            return
        try:
            self.camera.send(np.ascontiguousarray(rgb))
        except Exception as exc:  # pyvirtualcam raises plain RuntimeErrors for a vanished device
            if self.reconnect_s is None:
                raise
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        self._stop_counting()
        try:
            self.camera.close()
        except Exception:  # the device is gone already
            pass
        self.camera = None
        self._retry_at = time.monotonic() + self.reconnect_s
        self._on_status(f"the virtual camera stopped ({str(exc).splitlines()[0]}); re-opening it every "
                        f"{self.reconnect_s:g} s")

    def _reopen(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self.open(*self._format)
        except HarmonicamError:
            self._retry_at = time.monotonic() + self.reconnect_s
            return False
        self._retry_at = None
        self._on_status(f"the {self.description} is back")
        return True

    @property
    def frames_sent(self) -> int:
        return self.camera.frames_sent if self.camera else 0

    @property
    def current_fps(self) -> float:
        return self.camera.current_fps if self.camera else 0.0

    def close(self, success: bool = True) -> None:
        self._retry_at = None
        self._stop_counting()
        if self.camera is not None:
            self.camera.close()
            self.camera = None
