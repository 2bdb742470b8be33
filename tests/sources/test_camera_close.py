"""Closing a camera whose capture thread is stuck in the driver: the capture is released by the thread that
uses it, once the driver lets go, never under its feet; a device re-opened during the close is not leaked."""
from __future__ import annotations

import threading
import time

import numpy as np

import app.sources.camera as camera
from app.sources.camera import CameraSource
from tests.sources.fake_capture import FakeCapture

FRAME = np.full((48, 64, 3), 90, np.uint8)


class HangingCapture(FakeCapture):
    """Delivers frames until ``hang`` is set; then a read blocks in the driver until ``unblock`` is set.
    Records a release that happens while a read is still running."""

    def __init__(self):
        self.hang, self.unblock, self.reading = threading.Event(), threading.Event(), threading.Event()
        self.released_while_reading = False

    def read(self):
        self.reading.set()
        try:
            if self.hang.is_set():
                self.unblock.wait(10)
            time.sleep(0.002)
            return True, FRAME
        finally:
            self.reading.clear()

    def release(self):
        self.released_while_reading = self.reading.is_set()
        self.released = True


def test_a_capture_stuck_in_a_read_is_released_only_after_the_read(monkeypatch):
    monkeypatch.setattr(camera, "JOIN_S", 0.1, raising=False)  # a short wait for the test
    capture = HangingCapture()
    cam = CameraSource(0, size=(64, 48), opener=lambda dev: capture, on_status=lambda m: None)
    assert cam.read() is not None
    capture.hang.set()
    time.sleep(0.05)  # the capture thread is now inside the driver's read
    cam.close()
    assert not capture.released  # still in use: not released under the driver's feet
    capture.unblock.set()
    deadline = time.monotonic() + 5
    while not capture.released and time.monotonic() < deadline:
        time.sleep(0.01)
    assert capture.released and not capture.released_while_reading
    assert cam.read() is None


def test_a_camera_reopened_while_closing_is_released(monkeypatch):
    monkeypatch.setattr(camera, "JOIN_S", 0.1, raising=False)  # a short wait for the test
    first, again = HangingCapture(), HangingCapture()
    reopening, proceed = threading.Event(), threading.Event()
    opened = []

    def opener(dev):
        opened.append(dev)
        if len(opened) == 1:
            return first
        reopening.set()
        proceed.wait(10)  # the driver takes its time to open the device again
        return again

    cam = CameraSource(0, size=(64, 48), reopen_interval=0.01, opener=opener, on_status=lambda m: None)
    first.read = lambda: (False, None)  # unplugged: the thread re-opens it
    assert reopening.wait(5)
    cam.close()
    proceed.set()
    deadline = time.monotonic() + 5
    while not again.released and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.released and again.released
