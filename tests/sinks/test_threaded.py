"""A file sink on a thread of its own: every frame, in order; errors reach the frame loop; nothing half-written."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from app.sinks.base import Sink
from app.sinks.threaded import InThread
from app.sinks.video_file import VideoFileSink
from tests.conftest import numbered_frames


class Recorder(Sink):
    """Records what reaches it and on which thread; optionally fails at one frame."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[int] = []
        self.threads: set[str] = set()
        self.closed: list[bool] = []
        self.fail_at = fail_at

    def open(self, size, fps):
        self.frames.clear()

    def send(self, rgb):
        if len(self.frames) == self.fail_at:
            raise OSError("disk full")
        self.threads.add(threading.current_thread().name)
        self.frames.append(int(rgb[0, 0, 0]))

    def close(self, success=True):
        self.closed.append(success)


def test_every_frame_is_written_in_order_off_the_frame_loop(tmp_path):
    out = tmp_path / "out.avi"
    sink = InThread(VideoFileSink(out))
    frames = numbered_frames(24, (64, 48))
    sink.open((64, 48), 30.0)
    for f in frames:
        sink.send(f)
    sink.close()
    cap = cv2.VideoCapture(str(out))
    read = []
    while (ok_frame := cap.read())[0]:
        read.append(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB))
    assert len(read) == 24
    means = [float(f.mean()) for f in frames]
    assert all(abs(float(r.mean()) - m) < 6 for r, m in zip(read, means))  # the same frames, in order

    recorder = Recorder()
    sink = InThread(recorder)
    sink.open((4, 4), 30.0)
    for k in range(30):
        sink.send(np.full((4, 4, 3), k, np.uint8))
    sink.close()
    assert recorder.frames == list(range(30)) and recorder.closed == [True]
    assert recorder.threads and threading.current_thread().name not in recorder.threads


def test_an_error_of_the_writer_reaches_the_loop_and_the_file_is_discarded():
    recorder = Recorder(fail_at=3)
    sink = InThread(recorder)
    sink.open((4, 4), 30.0)
    with pytest.raises(OSError, match="disk full"):
        for k in range(50):
            sink.send(np.full((4, 4, 3), k, np.uint8))
        sink.close()
    assert recorder.frames == [0, 1, 2]
    sink.close(success=False)
    assert recorder.closed == [False]


def test_a_failed_run_drops_what_is_queued_and_discards_the_file(tmp_path):
    out = tmp_path / "out.mp4"
    sink = InThread(VideoFileSink(out))
    sink.open((64, 48), 30.0)
    for f in numbered_frames(10, (64, 48)):
        sink.send(f)
    sink.close(success=False)
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file
