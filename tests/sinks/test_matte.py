"""``--output-matte``: alphas become 8-bit grey frames in a video or a PNG sequence; bad paths are one sentence."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.errors import UsageError
from app.sinks.image_sequence import ImageSequenceSink
from app.sinks.matte import grey, make_matte_sink
from app.sinks.video_file import VideoFileSink


def test_grey_rounds_and_clips():
    alpha = np.array([[-0.2, 0.0, 0.5, 1 / 255, 0.999, 1.0, 1.3]], np.float32)
    np.testing.assert_array_equal(grey(alpha), [[0, 0, 128, 1, 255, 255, 255]])
    assert grey(alpha).dtype == np.uint8


def test_a_matte_video_holds_the_alphas_not_the_output(tmp_path):
    out = tmp_path / "matte.avi"
    sink = make_matte_sink(str(out))
    assert isinstance(sink.writer.sink, VideoFileSink)  # encoded on its own thread
    sink.open((64, 48), 25)
    for level in (0.0, 0.5, 1.0):
        sink.send(np.full((48, 64, 3), (255, 0, 0), np.uint8))  # the output picture: red everywhere
        sink.send_alpha(np.full((48, 64), level, np.float32))
    assert not out.exists()  # written under a temporary name until complete
    sink.close()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25)
    for expected in (0, 128, 255):
        ok, frame = cap.read()
        assert ok and frame.shape == (48, 64, 3)
        assert np.abs(frame.astype(int) - expected).max() <= 3  # grey (all channels alike), not red
    assert [p.name for p in tmp_path.iterdir()] == ["matte.avi"]


def test_a_failed_run_leaves_no_matte(tmp_path):
    sink = make_matte_sink(str(tmp_path / "matte.mp4"))
    sink.open((64, 48), 30)
    sink.send_alpha(np.ones((48, 64), np.float32))
    sink.close(success=False)
    assert list(tmp_path.iterdir()) == []


def test_a_numbered_name_is_a_png_sequence(tmp_path):
    sink = make_matte_sink(str(tmp_path / "matte_%05d.png"))
    assert isinstance(sink.writer.sink, ImageSequenceSink)
    sink.open((8, 6), 30)
    sink.send_alpha(np.full((6, 8), 0.25, np.float32))
    sink.close()
    assert (cv2.imread(str(tmp_path / "matte_00000.png"), cv2.IMREAD_UNCHANGED) == 64).all()


@pytest.mark.parametrize("name, text", [
    ("matte.txt", "unsupported file type; use a video (.avi, .m4v, .mkv, .mov, .mp4) or a numbered PNG sequence"),
    ("matte.jpg", "unsupported file type"),
    ("matte.png", "a PNG sequence needs exactly one frame number in its file name, such as matte_%05d.png"),
    ("mattes/", "is a folder; give a video such as"),
    ("nodir/matte.mp4", "--output-matte {dir}/nodir/matte.mp4: folder {dir}/nodir does not exist; create it first"),
])
def test_bad_matte_paths_are_one_sentence(tmp_path, name, text):
    (tmp_path / "mattes").mkdir()
    with pytest.raises(UsageError) as info:
        make_matte_sink(f"{tmp_path}/{name}")
    assert text.format(dir=tmp_path) in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["mattes"]


def test_an_existing_folder_without_a_slash_is_refused_too(tmp_path):
    with pytest.raises(UsageError, match="is a folder"):
        make_matte_sink(str(tmp_path))
