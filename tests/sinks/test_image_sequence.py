"""PNG sequences appear under their names only when complete, numbered from 0, and replace an earlier one whole."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from app.errors import RuntimeFailure, UsageError
from app.sinks.image_sequence import ImageSequenceSink


def write(sink: ImageSequenceSink, frames: list[np.ndarray], success: bool = True) -> None:
    h, w = frames[0].shape[:2]
    sink.open((w, h), 30)
    for frame in frames:
        sink.send(frame)
    sink.close(success)


def greys(n: int) -> list[np.ndarray]:
    return [np.full((6, 8), 40 * i + 1, np.uint8) for i in range(n)]


def test_grey_frames_become_numbered_8bit_grayscale_pngs_only_when_complete(tmp_path):
    sink = ImageSequenceSink(tmp_path / "m_%03d.png", "--output-matte")
    sink.open((8, 6), 30)
    for frame in greys(3):
        sink.send(frame)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []  # nothing under the names yet
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_000.png", "m_001.png", "m_002.png"]  # folder gone
    for i, frame in enumerate(greys(3)):
        on_disk = cv2.imread(str(tmp_path / f"m_{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert on_disk.dtype == np.uint8 and on_disk.shape == (6, 8)  # one channel: grayscale
        np.testing.assert_array_equal(on_disk, frame)


def test_rgb_frames_are_colour_pngs_in_rgb_order(tmp_path):
    write(ImageSequenceSink(tmp_path / "f%d.png", "--output"), [np.full((6, 8, 3), (255, 0, 0), np.uint8)])
    assert tuple(cv2.imread(str(tmp_path / "f0.png"))[0, 0]) == (0, 0, 255)  # BGR on disk


def test_failure_keeps_the_earlier_sequence_and_leaves_no_partial(tmp_path):
    write(ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte"), greys(2))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write(ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte"), greys(4)[::-1], success=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_shorter_run_replaces_a_longer_sequence_whole(tmp_path):
    (tmp_path / "m_9.png").write_bytes(b"not part of the sequence: a gap ends it")
    write(ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte"), greys(5))
    write(ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte"), greys(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_0.png", "m_1.png", "m_9.png"]


def test_no_frames_is_an_error_and_writes_nothing(tmp_path):
    sink = ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte")
    sink.open((8, 6), 30)
    with pytest.raises(RuntimeFailure, match="no frame"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


def test_a_frame_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    sink = ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte")
    sink.open((8, 6), 30)
    monkeypatch.setattr(cv2, "imwrite", lambda *a: False)
    with pytest.raises(RuntimeFailure, match=r"cannot write .*m_0\.png; check the folder is writable and has space"):
        sink.send(greys(1)[0])
    sink.close(success=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, text", [
    ("m.png", "needs exactly one frame number"),
    ("m_%d_%d.png", "needs exactly one frame number"),
    ("m_%s_%d.png", "needs exactly one frame number"),
    ("m_%%d.png", "needs exactly one frame number"),
    ("m_%05d.jpg", "end the name in .png"),
    ("nodir/m_%05d.png", "does not exist"),
])
def test_bad_patterns(tmp_path, name, text):
    with pytest.raises(UsageError, match=text):
        ImageSequenceSink(tmp_path / name, "--output-matte")


def test_a_literal_percent_is_written_as_is(tmp_path):
    write(ImageSequenceSink(tmp_path / "100%%_%02d.png", "--output-matte"), greys(1))
    assert [p.name for p in tmp_path.iterdir()] == ["100%_00.png"]


def test_a_read_only_folder_is_refused_up_front(tmp_path, monkeypatch):
    # os.access stands in for a read-only folder: these tests may run as root, who may write anywhere.
    monkeypatch.setattr(os, "access", lambda path, mode: path != tmp_path)
    with pytest.raises(UsageError, match=f"folder {tmp_path} is not writable; choose another folder"):
        ImageSequenceSink(tmp_path / "m_%d.png", "--output-matte")
