"""Video files are written under a temporary name and appear only when complete."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.errors import RuntimeFailure, UsageError
from app.sinks.video_file import VideoFileSink


def test_video_is_written_at_the_source_rate(tmp_path):
    out = tmp_path / "out.mp4"
    sink = VideoFileSink(out)
    sink.open((64, 48), 24)
    for i in range(10):
        sink.send(np.full((48, 64, 3), i * 20, np.uint8))
    assert not out.exists()  # nothing under the user's name until it is complete
    sink.close()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(24)
    assert list(tmp_path.iterdir()) == [out]


def test_failure_keeps_the_existing_file_and_leaves_no_partial(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"the user's old file")
    sink = VideoFileSink(out)
    sink.open((64, 48), 30)
    sink.send(np.zeros((48, 64, 3), np.uint8))
    sink.close(success=False)
    assert out.read_bytes() == b"the user's old file"
    assert list(tmp_path.iterdir()) == [out]


def test_still_image_output(tmp_path):
    out = tmp_path / "still.png"
    sink = VideoFileSink(out)
    sink.open((8, 6), 30)
    sink.send(np.full((6, 8, 3), (255, 0, 0), np.uint8))
    sink.close()
    assert tuple(cv2.imread(str(out))[0, 0]) == (0, 0, 255)  # BGR on disk


def test_no_frames_is_an_error_and_writes_nothing(tmp_path):
    sink = VideoFileSink(tmp_path / "empty.mp4")
    sink.open((64, 48), 30)
    with pytest.raises(RuntimeFailure, match="no frame"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, text", [("x.txt", "unsupported file type"), ("nodir/x.mp4", "does not exist")])
def test_bad_output_paths(tmp_path, name, text):
    with pytest.raises(UsageError, match=text):
        VideoFileSink(tmp_path / name)
