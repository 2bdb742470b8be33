"""Video files are written under a temporary name and appear only when complete."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from app.errors import RuntimeFailure, UsageError
from app.sinks import video_codec
from app.sinks.video_codec import Encoder, OpenCVWriter, h264_encoder, sample_entry
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


@pytest.fixture
def fresh_probe():
    """Forget which encoder the probe chose, before and after, so each test probes for itself."""
    h264_encoder.cache_clear()
    yield
    h264_encoder.cache_clear()


def write_clip(path, size=(64, 48), frames=6):
    sink = VideoFileSink(path)
    sink.open(size, 30)
    for i in range(frames):
        sink.send(np.full((size[1], size[0], 3), i * 40, np.uint8))
    sink.close()
    return path


def test_mp4_is_h264_when_pyav_is_installed(tmp_path, fresh_probe):
    pytest.importorskip("av")  # a declared dependency: present wherever Harmonicam is installed
    out = write_clip(tmp_path / "out.mp4")
    assert sample_entry(out) == "avc1"
    cap = cv2.VideoCapture(str(out))  # and a decoder reads it back frame by frame
    assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"avc1", b"h264")
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert h264_encoder().name == "PyAV (libx264)"


@pytest.mark.parametrize("codec", ["avc1", "mp4v"])
def test_odd_sizes_lose_their_last_row_and_column_with_either_codec(tmp_path, fresh_probe, monkeypatch, codec):
    if codec == "mp4v":
        monkeypatch.setattr(video_codec, "H264_ENCODERS", ())
    elif h264_encoder() is None:
        pytest.skip("no H.264 encoder here")
    out = write_clip(tmp_path / "odd.mp4", size=(65, 49))
    assert sample_entry(out) == codec
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    assert ok and frame.shape == (48, 64, 3) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6


def test_without_an_h264_encoder_files_are_mp4v_after_one_warning(tmp_path, fresh_probe, caplog, monkeypatch):
    # An encoder that cannot open (OpenCV with a fourcc FFmpeg does not know) stands for a missing one.
    broken = Encoder("none", lambda path, size, fps: OpenCVWriter(path, "ZZZZ", size, fps))
    monkeypatch.setattr(video_codec, "H264_ENCODERS", (broken,))
    with caplog.at_level(logging.WARNING):
        first = write_clip(tmp_path / "a.mp4")
        second = write_clip(tmp_path / "b.mov")
    assert sample_entry(first) == sample_entry(second) == "mp4v"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MPEG-4 Part 2 (mp4v)" in warnings[0].getMessage()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mov"]  # no probe file left behind


def test_avi_stays_motion_jpeg(tmp_path, fresh_probe):
    out = write_clip(tmp_path / "out.avi")
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"MJPG"


def test_sample_entry_reads_the_codec_of_a_file_opencv_wrote(tmp_path):
    path = tmp_path / "mp4v.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (32, 32))
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    assert sample_entry(path) == "mp4v"
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x10ftypisom" + b"\x00" * 8)
    assert sample_entry(tmp_path / "junk.mp4") is None
