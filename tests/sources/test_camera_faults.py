"""A camera that misbehaves while running: empty frames, grey frames, a resolution change, unplugging."""
from __future__ import annotations

import time

import numpy as np

from app.sources.camera import CameraSource
from tests.sources.fake_capture import FakeCapture


class ScriptedCapture(FakeCapture):
    """A capture device that plays a script of (ok, frame) reads, then keeps repeating the last one."""

    def __init__(self, script):
        self.script = list(script)

    def read(self):
        time.sleep(0.002)
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def read_frames(cam, n, timeout=5.0):
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = cam.read()
        if frame is not None:
            frames.append(frame)
    return frames


def test_empty_grey_and_resized_frames_keep_the_stream_going():
    big = np.full((96, 128, 3), 50, np.uint8)     # another resolution than the stream's
    grey = np.full((48, 64), 200, np.uint8)      # a one-channel camera
    script = [(True, np.empty((0, 0, 3), np.uint8)), (True, None), (True, grey), (True, big)]
    cam = CameraSource(0, size=(64, 48), opener=lambda dev: ScriptedCapture(script), on_status=lambda m: None)
    try:
        frames = read_frames(cam, 3)
    finally:
        cam.close()
    assert frames, "the empty frames did not stop the capture thread"
    assert all(f.rgb.shape == (48, 64, 3) for f in frames)
    assert {int(f.rgb[0, 0, 0]) for f in frames} <= {200, 50}


def test_a_camera_that_only_gives_empty_frames_counts_as_lost_and_is_reopened():
    opened, statuses = [], []

    def opener(dev):
        opened.append(1)
        if len(opened) == 1:
            return ScriptedCapture([(True, np.empty((0, 0, 3), np.uint8))])
        return ScriptedCapture([(True, np.full((48, 64, 3), 90, np.uint8))])

    cam = CameraSource(0, size=(64, 48), reopen_interval=0.05, opener=opener, on_status=statuses.append)
    try:
        frames = read_frames(cam, 1)
    finally:
        cam.close()
    assert len(opened) >= 2 and any("stopped delivering" in s for s in statuses)
    assert frames and frames[0].rgb[0, 0, 0] == 90
