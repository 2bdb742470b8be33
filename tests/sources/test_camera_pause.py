"""A paused camera (nobody reads the virtual camera) stops capturing and resumes with a fresh frame."""
from __future__ import annotations

import threading
import time

import numpy as np

from app.sources.camera import CameraSource
from tests.sources.fake_capture import FakeCapture


class CountingCapture(FakeCapture):
    """Each read is a frame whose value is the number of reads so far."""

    def __init__(self):
        self.reads = 0
        self.lock = threading.Lock()

    def read(self):
        time.sleep(0.002)
        with self.lock:
            self.reads += 1
            return True, np.full((48, 64, 3), min(self.reads, 255), np.uint8)


def test_a_paused_camera_reads_nothing_and_resumes_with_a_fresh_frame():
    capture = CountingCapture()
    cam = CameraSource(0, size=(64, 48), opener=lambda dev: capture, on_status=lambda m: None)
    try:
        assert cam.read() is not None
        cam.set_paused(True)
        time.sleep(0.1)  # a read that was under way when the pause began ends
        before = capture.reads
        time.sleep(0.2)
        assert capture.reads == before  # no decoding while paused

        cam.set_paused(False)
        frame = cam.read()
        assert int(frame.rgb[0, 0, 0]) > before  # not the frame held from before the pause
    finally:
        cam.close()
