"""Sources: files yield every frame in order; cameras keep only the newest frame and re-open."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from app.errors import RuntimeFailure, UsageError
from app.sources import open_source
from app.sources.camera import CameraSource
from app.sources.sample import FPS, SECONDS, SIZE
from app.sources.video import VideoFileSource
from tests.conftest import numbered_frames, write_image, write_video


def index_of(frame) -> int:
    return round(float(frame.rgb.mean()) / 10) - 1


def test_video_file_yields_every_frame_in_order(tmp_path):
    path = write_video(tmp_path / "n.avi", numbered_frames(12))
    with VideoFileSource(path) as src:
        frames = list(iter(src.read, None))
    assert [index_of(f) for f in frames] == list(range(12))
    assert [f.index for f in frames] == list(range(12))
    assert frames[3].timestamp == pytest.approx(3 / 30)


def test_video_file_loops_and_resizes(tmp_path):
    path = write_video(tmp_path / "n.avi", numbered_frames(5))
    with VideoFileSource(path, loop=True, size=(32, 24)) as src:
        frames = [src.read() for _ in range(12)]
    assert [index_of(f) for f in frames] == [i % 5 for i in range(12)]
    assert frames[0].rgb.shape == (24, 32, 3)
    assert frames[-1].index == 11  # indices keep counting across loops


def test_sample_clip_is_a_real_portrait_clip(sample_clip):
    with open_source("sample") as src:
        assert src.size == SIZE and src.fps == FPS
        first, second = src.read(), src.read()
    cap = cv2.VideoCapture(str(sample_clip))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == int(FPS * SECONDS)
    cap.release()
    # camera motion and noise: consecutive frames differ, but only slightly
    diff = np.abs(first.rgb.astype(int) - second.rgb.astype(int)).mean()
    assert 0.5 < diff < 40


def test_image_source_repeats_the_picture(tmp_path, astronaut):
    path = write_image(tmp_path / "a.png", astronaut)
    with open_source(str(path), size=(320, 180), image_frames=3) as src:
        frames = list(iter(src.read, None))
    assert len(frames) == 3 and frames[0].rgb.shape == (180, 320, 3)


@pytest.mark.parametrize("spec, error", [
    ("missing.mp4", RuntimeFailure), ("missing.png", RuntimeFailure), ("notes.txt", UsageError),
])
def test_bad_sources_fail_with_one_sentence(spec, error):
    with pytest.raises(error, match="(does not exist|is not a camera index)"):
        open_source(spec)


def test_unreadable_video_is_refused(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(RuntimeFailure, match="not a readable video"):
        open_source(str(bad))


class FlakyCapture:
    """A real VideoCapture on a file that 'unplugs' after some frames (file end)."""

    opened = 0

    def __init__(self, path):
        FlakyCapture.opened += 1
        self.cap = cv2.VideoCapture(str(path))

    def __getattr__(self, name):
        return getattr(self.cap, name)

    def read(self):
        time.sleep(0.002)  # a camera delivers at its own pace
        return self.cap.read()


def test_camera_keeps_newest_frame_and_reopens(tmp_path):
    path = write_video(tmp_path / "cam.avi", numbered_frames(20))
    FlakyCapture.opened = 0
    statuses = []
    cam = CameraSource(str(path), size=(64, 48), reopen_interval=0.05,
                       opener=lambda dev: FlakyCapture(dev), on_status=statuses.append)
    try:
        time.sleep(0.2)  # the capture thread runs ahead of the consumer
        frame = cam.read()
        # stale frames were dropped: the consumer did not get frame 0
        assert frame is not None and index_of(frame) > 0
        deadline = time.monotonic() + 5
        while FlakyCapture.opened < 2 and time.monotonic() < deadline:
            cam.read()
        assert FlakyCapture.opened >= 2, "the lost camera was re-opened"
        assert any("stopped delivering" in s for s in statuses)
        assert cam.read() is not None  # frames flow again after re-opening
    finally:
        cam.close()
    assert cam.read() is None


def test_missing_camera_is_reported(tmp_path):
    with pytest.raises(RuntimeFailure, match="could not be opened.*--source sample"):
        CameraSource(str(tmp_path / "no-camera"), opener=cv2.VideoCapture)


def test_camera_refusing_resolution_is_reported(tmp_path):
    path = write_video(tmp_path / "cam.avi", numbered_frames(3, size=(64, 48)))
    with pytest.raises(RuntimeFailure, match="refused 1920x1080 .*64x48"):
        CameraSource(str(path), size=(1920, 1080), strict_size=True, opener=cv2.VideoCapture)
