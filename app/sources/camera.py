"""Live cameras: a capture thread keeps only the newest frame.

The thread reads as fast as the camera delivers and overwrites a one-slot
buffer, so a slow pipeline never works on stale frames and never blocks the
camera. A camera that disappears is reported and re-opened; the app lives on.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import cv2
import numpy as np

from app.errors import RuntimeFailure
from app.imaging import cover_fit
from app.sources.base import Source
from models.frame import Frame

log = logging.getLogger(__name__)

#: Consecutive failed reads after which the camera counts as lost.
LOST_AFTER_FAILURES = 10
#: How often a paused capture thread looks whether it may read again.
PAUSED_STEP_S = 0.05
#: How long ``close`` waits for the capture thread; a driver stuck longer releases the device when it returns.
JOIN_S = 1.0


def camera_label(device: int | str) -> str:
    return f"camera {device}"


class CameraSource(Source):
    """A webcam by index (0, 1, …) or device path (/dev/video0)."""

    live = True

    def __init__(self, device: int | str = 0, size: tuple[int, int] = (1280, 720), fps: float = 30.0,
                 strict_size: bool = False, reopen_interval: float = 1.0,
                 opener: Callable[[int | str], cv2.VideoCapture] = cv2.VideoCapture,
                 on_status: Callable[[str], None] | None = None) -> None:
        self.device = device
        self.fps = fps
        self._size = size
        self._opener = opener
        self._reopen_interval = reopen_interval
        self._on_status = on_status or (lambda msg: log.warning("%s", msg))
        self.description = camera_label(device)
        self.status = "starting"
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._seq = 0
        self._taken = 0
        self._index = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._cap = self._open()
        if self._cap is None:
            raise RuntimeFailure(f"{self.description} could not be opened; check that it is connected and not "
                                 "used by another app, or use --source sample")
        actual = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if strict_size and actual != size:
            self._cap.release()
            raise RuntimeFailure(f"{self.description} refused {size[0]}x{size[1]} (it delivers "
                                 f"{actual[0]}x{actual[1]}); pass --resolution {actual[0]}x{actual[1]} or leave it out")
        self.status = "running"
        self._thread = threading.Thread(target=self._capture_loop, name="camera-capture", daemon=True)
        self._thread.start()

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def _open(self) -> cv2.VideoCapture | None:
        cap = self._opener(self.device)
        if not cap.isOpened():
            cap.release()
            return None
        w, h = self._size
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it add no queueing latency
        return cap

    def _set_status(self, status: str, message: str) -> None:
        if status != self.status:
            self.status = status
            self._on_status(message)

    def _capture_loop(self) -> None:
        """Reads until closed. Only this thread touches the capture once it runs, so the capture is
        released here, after the last read or open, never while the driver still uses it."""
        try:
            self._capture_frames()
        finally:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def _capture_frames(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._paused.is_set():  # no decoding while nobody needs frames; the device stays open
                self._stop.wait(PAUSED_STEP_S)
                continue
            ok, bgr = self._cap.read() if self._cap is not None else (False, None)
            # Some drivers report success with an empty picture while a camera is unplugged.
            ok = ok and bgr is not None and bgr.size > 0
            if ok:
                failures = 0
                self._set_status("running", f"{self.description} is back")
                with self._cond:
                    self._latest = (bgr, time.monotonic())
                    self._seq += 1
                    self._cond.notify_all()
                continue
            failures += 1
            if failures < LOST_AFTER_FAILURES and self._cap is not None:
                continue
            self._set_status("lost", f"{self.description} stopped delivering frames; re-opening it "
                                     f"every {self._reopen_interval:g} s")
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            if self._stop.wait(self._reopen_interval):
                break
            self._cap = self._open()  # released on the way out when the source was closed meanwhile
            failures = 0

    def set_paused(self, paused: bool) -> None:
        """Stop (True) or restart (False) reading the camera. The device stays open, so resuming is
        immediate; the frame held from before the pause is dropped, so ``read`` waits for a fresh one."""
        if paused:
            self._paused.set()
            return
        with self._cond:
            self._taken = self._seq
        self._paused.clear()

    def read(self) -> Frame | None:
        """Wait for a frame newer than the last one returned; None once closed."""
        with self._cond:
            while self._seq == self._taken and not self._stop.is_set():
                self._cond.wait(0.5)
            if self._stop.is_set():
                return None
            bgr, t = self._latest
            self._taken = self._seq
        # Grey (IR or monochrome) cameras give one channel; a camera that changes its resolution
        # mid-stream is cover-fit back to the stream's size, which every later stage relies on.
        code = cv2.COLOR_GRAY2RGB if bgr.ndim == 2 or bgr.shape[2] == 1 else cv2.COLOR_BGR2RGB
        rgb = cover_fit(cv2.cvtColor(bgr, code), self._size)
        frame = Frame(rgb, self._index, t)
        self._index += 1
        return frame

    def interrupt(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop capturing; the capture thread releases the device. A driver stuck in a read for longer
        than :data:`JOIN_S` is left to finish it (the thread is a daemon): the device is released then."""
        self.interrupt()
        self._thread.join(timeout=JOIN_S)
        if self._thread.is_alive():
            log.warning("%s did not stop within %g s; it is released once its driver returns",
                        self.description, JOIN_S)
