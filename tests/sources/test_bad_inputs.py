"""Odd and broken image and video files, through the real entry points.

Each input either works (with the right pixels) or is refused with one sentence
that says what to do: a RuntimeFailure from ``open_source`` / ``parse_background``
and, from the command line, exit code 1 with one line on stderr and no traceback.
Nothing may hang: every test here runs under an alarm.
"""
from __future__ import annotations

import logging
import re
import signal
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest


from app.backgrounds import VideoBackground, parse_background
from app.cli import main
from app.errors import RuntimeFailure
from app.sources import open_source
from app.sources.video import VideoFileSource
from models.frame import Frame
from tests.conftest import write_video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HANG_LIMIT_S = 30


@pytest.fixture(autouse=True)
def no_hang():
    """A test that hangs (e.g. a decoder loop that never ends) fails instead of stalling the run."""
    def fail(*_):
        raise TimeoutError(f"the test took more than {HANG_LIMIT_S} s: something hangs")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(HANG_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# --- Files ---------------------------------------------------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, rows: bytes, colour_type: int = 0, depth: int = 8) -> bytes:
    """A PNG built by hand (fast for huge, repetitive pictures); ``rows`` is one unfiltered row."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    body = zlib.compress((b"\0" + rows) * height, 1) if rows else zlib.compress(b"")
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def write_png(path: Path, image: np.ndarray) -> Path:
    """``image`` as OpenCV stores it (BGR/BGRA order, any depth)."""
    assert cv2.imwrite(str(path), image)
    return path


def shades(n: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames whose grey level encodes their index: 20, 40, 60, …"""
    w, h = size
    return [np.full((h, w, 3), 20 * (i + 1), np.uint8) for i in range(n)]


def shade_index(rgb: np.ndarray) -> int:
    return round(float(rgb.mean()) / 20) - 1


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def frame(size=(64, 48), index: int = 0) -> Frame:
    w, h = size
    return Frame(np.zeros((h, w, 3), np.uint8), index, index / 30)


def background_at(spec: Path, size=(64, 48), index: int = 0) -> np.ndarray:
    bg = parse_background(str(spec))
    try:
        return bg.at(frame(size, index), np.zeros(size[::-1], np.float32))
    finally:
        bg.close()


def run_cli(path: Path, tmp_path: Path, capfd, *extra: str) -> tuple[int, str]:
    capfd.readouterr()
    code = main(["run", "--source", str(path), "--harmonizer", "none", "--output", str(tmp_path / "o.png"),
                 *extra])
    return code, capfd.readouterr().err


def assert_one_sentence_error(code: int, err: str, pattern: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("harmonicam: error: ")]
    assert len(errors) == 1 and len(lines) == 1, f"expected one error line, got: {err!r}"
    assert re.search(pattern, errors[0]), errors[0]


RNG = np.random.default_rng(7)
PICTURE = RNG.integers(0, 256, (24, 32, 3), np.uint8)  # RGB


# --- Images that work ----------------------------------------------------------------------------

def test_grey_png_becomes_grey_rgb(tmp_path):
    path = write_png(tmp_path / "g.png", PICTURE[..., 0])
    with open_source(str(path)) as src:
        rgb = src.read().rgb
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, np.repeat(PICTURE[..., :1], 3, axis=2))


def test_rgba_png_is_composited_over_black(tmp_path):
    alpha = np.zeros((24, 32), np.uint8)
    alpha[:, 8:16], alpha[:, 16:24], alpha[:, 24:] = 255, 128, 1
    path = write_png(tmp_path / "a.png", np.dstack([PICTURE[..., ::-1], alpha]))
    with open_source(str(path)) as src:
        rgb = src.read().rgb.astype(int)
    assert rgb.shape == (24, 32, 3)
    assert (rgb[:, :8] == 0).all()  # fully transparent: black, whatever colour the file stores
    assert np.array_equal(rgb[:, 8:16], PICTURE[:, 8:16])  # opaque: unchanged
    assert np.abs(rgb[:, 16:24] - PICTURE[:, 16:24].astype(float) * 128 / 255).max() <= 0.5
    assert rgb[:, 24:].max() <= 1
    # The same picture as a background.
    assert np.array_equal(background_at(path, (32, 24)), rgb)


def test_palette_png_with_transparency(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    img = pil.new("P", (20, 20), 0)
    img.putpalette([255, 0, 0, 0, 255, 0])
    img.paste(1, (10, 0, 20, 20))
    img.save(tmp_path / "p.png", transparency=0)
    rgb = background_at(tmp_path / "p.png", (20, 20))
    assert (rgb[:, :10] == 0).all() and (rgb[:, 10:] == (0, 255, 0)).all()


@pytest.mark.parametrize("grey", [False, True])
def test_16_bit_png_is_scaled_not_truncated(tmp_path, grey):
    levels = np.array([0, 255, 32896, 65280, 65535, 128 * 257], np.uint16)
    want = np.array([0, 1, 128, 254, 255, 128], np.uint8)  # round(v·255/65535); v >> 8 gives 0 and 255
    plane = np.tile(levels, (16, 3))  # 16×18
    image = plane if grey else np.dstack([plane, plane // 2, plane // 4])[..., ::-1]
    path = write_png(tmp_path / "d.png", np.ascontiguousarray(image))
    with open_source(str(path)) as src:
        rgb = src.read().rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 18, 3)
    assert np.array_equal(rgb[0, :6, 0], want)
    if not grey:
        expected_g = np.rint((levels // 2).astype(float) * 255 / 65535).astype(np.uint8)
        assert np.array_equal(rgb[0, :6, 1], expected_g)


def test_cmyk_jpeg_is_decoded_to_rgb(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="pillow writes the CMYK JPEG; without it there is none")
    patches = np.zeros((32, 48, 3), np.uint8)
    patches[:, :16], patches[:, 16:32], patches[:, 32:] = (200, 30, 30), (30, 200, 30), (30, 30, 200)
    pil.fromarray(patches).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert pil.open(tmp_path / "c.jpg").mode == "CMYK"
    with open_source(str(tmp_path / "c.jpg")) as src:
        rgb = src.read().rgb.astype(int)
    assert rgb.shape == (32, 48, 3)
    for x, colour in ((8, (200, 30, 30)), (24, (30, 200, 30)), (40, (30, 30, 200))):
        assert np.abs(rgb[16, x] - colour).max() <= 8, (x, rgb[16, x])


def test_one_pixel_image(tmp_path, capfd):
    path = write_png(tmp_path / "one.png", np.array([[[30, 60, 90]]], np.uint8))
    # As a source at its own size: refused, naming the minimum and what to do.
    with pytest.raises(RuntimeFailure, match=r"1x1 pixels, smaller than the minimum frame of 16x16; pass --resolution"):
        open_source(str(path))
    # With a size: scaled.
    with open_source(str(path), size=(32, 24)) as src:
        rgb = src.read().rgb
    assert rgb.shape == (24, 32, 3) and (rgb == (90, 60, 30)).all()
    # As a background: scaled to the frame.
    assert (background_at(path) == (90, 60, 30)).all()
    code, err = run_cli(path, tmp_path, capfd)
    assert_one_sentence_error(code, err, "smaller than the minimum frame of 16x16")
    assert run_cli(path, tmp_path, capfd, "--resolution", "32x24")[0] == 0
    assert cv2.imread(str(tmp_path / "o.png")).shape == (24, 32, 3)


def test_8000_square_image(tmp_path):
    # Left half black, right half white, as a grey PNG built directly (quick to write).
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(8000, 8000, bytes(4000) + b"\xff" * 4000))
    rgb = background_at(path, (64, 48))  # a background: cover-fit down to the frame
    assert rgb.shape == (48, 64, 3)
    assert (rgb[:, :31] == 0).all() and (rgb[:, 33:] == 255).all()
    # As a source at its own size it is larger than any frame: refused with what to do.
    with pytest.raises(RuntimeFailure, match=r"8000x8000 pixels, larger than the maximum frame of 7680x4320; "
                                             r"pass --resolution"):
        open_source(str(path))


def test_image_over_the_decoder_pixel_limit_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(40000, 30000, b""))  # 1.2e9 pixels > 2^30: only the header is real
    with pytest.raises(RuntimeFailure, match="40000x30000 pixels, more than the limit of 1073741824 pixels"):
        parse_background(str(path))


# --- Images that are refused ---------------------------------------------------------------------

def _zero(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _half_png(p: Path) -> Path:
    write_png(p, cv2.resize(PICTURE, (320, 240)))
    return truncate(p)


def _half_jpeg(p: Path) -> Path:
    cv2.imwrite(str(p), cv2.resize(PICTURE, (320, 240)))
    return truncate(p)


def _text(p: Path) -> Path:
    p.write_text("these are my holiday notes, not a picture\n")
    return p


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


BAD_IMAGES = {
    "zero.png": (_zero, r"is an empty file \(0 bytes\), not a readable image; use a PNG"),
    "half.png": (_half_png, r"is a truncated PNG \(its end is missing\), not a readable image; copy or export"),
    "half.jpg": (_half_jpeg, r"is not a readable image \(damaged, truncated or not an image\); use a PNG"),
    "text.png": (_text, r"is not a readable image \(damaged, truncated or not an image\); use a PNG"),
    "x.png": (_folder, r"x.png is a folder, not an image file; pass the path of an image file"),
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_image_is_refused_in_one_sentence(tmp_path, capfd, name):
    make, message = BAD_IMAGES[name]
    path = make(tmp_path / name)
    with pytest.raises(RuntimeFailure, match=message):
        open_source(str(path))
    with pytest.raises(RuntimeFailure, match=message):
        parse_background(str(path))
    code, err = run_cli(path, tmp_path, capfd)
    assert_one_sentence_error(code, err, message)


def test_bad_background_image_from_the_command_line(tmp_path, capfd):
    source = write_png(tmp_path / "s.png", cv2.resize(PICTURE, (32, 24)))
    bad = _half_png(tmp_path / "bg.png")
    code, err = run_cli(source, tmp_path, capfd, "--background", str(bad))
    assert_one_sentence_error(code, err, "is a truncated PNG")


@pytest.mark.parametrize("name", ["grey", "rgba", "16bit"])
def test_odd_but_valid_images_run_from_the_command_line(tmp_path, capfd, name):
    image = {"grey": PICTURE[..., 0], "rgba": np.dstack([PICTURE, PICTURE[..., 0]]),
             "16bit": PICTURE.astype(np.uint16) * 257}[name]
    path = write_png(tmp_path / f"{name}.png", image)
    code, err = run_cli(path, tmp_path, capfd)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o.png")).shape == (24, 32, 3)


# --- Videos --------------------------------------------------------------------------------------

def test_odd_sized_video_works(tmp_path, capfd):
    path = write_video(tmp_path / "odd.avi", shades(6, (161, 91)), opencv_mjpeg=True)
    with open_source(str(path)) as src:
        assert src.size == (161, 91)
        frames = list(iter(src.read, None))
    assert [f.rgb.shape for f in frames] == [(91, 161, 3)] * 6
    assert [shade_index(f.rgb) for f in frames] == list(range(6))
    assert [shade_index(background_at(path, (64, 48), i)) for i in (0, 5, 7)] == [0, 5, 1]
    code, err = run_cli(path, tmp_path, capfd)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o.png")).shape == (91, 161, 3)


def test_mp4v_video_with_odd_size_request(tmp_path):
    # FFmpeg's writer stores 160x90 for 161x91; whatever it stored is read back at that size.
    path = tmp_path / "odd.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (161, 91))
    for f in shades(4, (161, 91)):
        writer.write(f)
    writer.release()
    with open_source(str(path)) as src:
        frames = list(iter(src.read, None))
        w, h = src.size
    assert len(frames) == 4 and frames[0].rgb.shape == (h, w, 3) and abs(w - 161) <= 1 and abs(h - 91) <= 1


@pytest.mark.parametrize("name, builtin", [("none.avi", True), ("none-ffmpeg.avi", False), ("none.mp4", False)])
def test_video_without_frames_is_refused(tmp_path, capfd, name, builtin):
    path = tmp_path / name
    if builtin:
        writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    else:
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if name.endswith(".mp4") else "MJPG"))
        writer = cv2.VideoWriter(str(path), fourcc, 30, (64, 48))
    writer.release()
    assert path.is_file()
    message = r"is not a readable video \((it holds no frame that can be decoded|damaged, truncated or not a video)\)"
    with pytest.raises(RuntimeFailure, match=message):
        open_source(str(path))
    with pytest.raises(RuntimeFailure, match=message):
        parse_background(str(path))
    assert_one_sentence_error(*run_cli(path, tmp_path, capfd), message)


def test_truncated_avi_ends_early_and_says_so(tmp_path, capfd, caplog):
    path = truncate(write_video(tmp_path / "cut.avi", shades(12), opencv_mjpeg=True), 0.5)
    with caplog.at_level(logging.WARNING), VideoFileSource(path) as src:
        frames = list(iter(src.read, None))
        assert src.read() is None  # and stays ended
    assert 0 < len(frames) < 12
    assert caplog.text.count("may be truncated") == 1
    assert [shade_index(f.rgb) for f in frames] == list(range(len(frames)))
    assert f"ended after {len(frames)} of its 12 frames; the file may be truncated" in caplog.text
    # As a background it loops over the frames it has (index 30 wraps around).
    assert shade_index(background_at(path, index=30)) == 30 % len(frames)
    code, err = run_cli(path, tmp_path, capfd)
    assert code == 0 and "Traceback" not in err


def test_truncated_mp4_is_refused(tmp_path, capfd):
    path = tmp_path / "cut.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for f in shades(10):
        writer.write(f)
    writer.release()
    truncate(path, 0.5)  # the index (moov) is at the end: the file cannot be opened
    message = r"cut.mp4 is not a readable video \(damaged, truncated or not a video\); use an MP4"
    with pytest.raises(RuntimeFailure, match=message):
        open_source(str(path))
    with pytest.raises(RuntimeFailure, match=message):
        parse_background(str(path))
    assert_one_sentence_error(*run_cli(path, tmp_path, capfd), message)  # FFmpeg's own lines are silenced


def _patch_avi_rate(path: Path, rate: int) -> Path:
    data = bytearray(path.read_bytes())
    strh = data.find(b"strh")
    data[strh + 28:strh + 36] = struct.pack("<II", 1, rate)  # dwScale, dwRate
    avih = data.find(b"avih")
    data[avih + 8:avih + 12] = struct.pack("<I", 1_000_000 // rate if rate else 0)  # µs per frame
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how, rate", [("written at 1000", 1000), ("header says 0", 0),
                                       ("header says 1000000", 1_000_000)])
def test_absurd_frame_rate_falls_back(tmp_path, how, rate):
    if how == "written at 1000":
        path = write_video(tmp_path / "fast.avi", shades(5), fps=rate)
        assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == 1000
    else:
        path = _patch_avi_rate(write_video(tmp_path / "rate.avi", shades(5), opencv_mjpeg=True), rate)
    with VideoFileSource(path) as src:
        frames = list(iter(src.read, None))
        fps = src.fps
    assert 1 <= fps <= 240 and (how == "header says 0" or fps == 30.0)
    assert len(frames) == 5 and frames[4].timestamp == pytest.approx(4 / fps)
    bg = VideoBackground(path)
    assert 1 <= bg.fps <= 240
    bg.close()


def test_variable_frame_rate_gif(tmp_path, capfd):
    pil = pytest.importorskip("PIL.Image", reason="pillow writes the variable-rate GIF")
    pictures = [pil.fromarray(f) for f in shades(8, (161, 91))]
    path = tmp_path / "vfr.gif"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], loop=0,
                     duration=[10, 200, 30, 500, 20, 20, 100, 40])
    with open_source(str(path)) as src:
        frames = list(iter(src.read, None))
        assert 1 <= src.fps <= 240 and src.size == (161, 91)
    assert [shade_index(f.rgb) for f in frames] == list(range(8))
    assert [f.index for f in frames] == list(range(8))
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:]))
    code, err = run_cli(path, tmp_path, capfd)
    assert code == 0, err


@pytest.mark.parametrize("name, make, message", [
    ("notes.mp4", _text, r"notes.mp4 is not a readable video \(damaged, truncated or not a video\); use an MP4"),
    ("x.mp4", _folder, r"x.mp4 is a folder, not a video file; pass the path of a video file"),
    ("empty.mp4", _zero, r"empty.mp4 is not a readable video"),
])
def test_non_video_named_like_one_is_refused(tmp_path, capfd, name, make, message):
    path = make(tmp_path / name)
    with pytest.raises(RuntimeFailure, match=message):
        open_source(str(path))
    with pytest.raises(RuntimeFailure, match=message):
        parse_background(str(path))
    assert_one_sentence_error(*run_cli(path, tmp_path, capfd), message)


def test_tiny_video_is_refused_at_its_own_size_but_scales(tmp_path):
    path = write_video(tmp_path / "tiny.avi", shades(3, (8, 8)), opencv_mjpeg=True)
    with pytest.raises(RuntimeFailure, match="8x8 pixels, smaller than the minimum frame of 16x16"):
        open_source(str(path))
    with open_source(str(path), size=(32, 24)) as src:
        assert src.read().rgb.shape == (24, 32, 3)
    assert background_at(path).shape == (48, 64, 3)


class NoSeek:
    """A capture whose seeking silently does nothing, as with some damaged or streamed files."""

    def __init__(self, cap):
        self.cap = cap

    def set(self, prop, value):
        return False

    def __getattr__(self, name):
        return getattr(self.cap, name)


def test_background_video_that_cannot_seek_still_loops(tmp_path, monkeypatch):
    path = write_video(tmp_path / "n.avi", shades(4), opencv_mjpeg=True)
    import app.backgrounds as backgrounds

    real_open = backgrounds.open_capture
    monkeypatch.setattr(backgrounds, "open_capture", lambda p: NoSeek(real_open(p)))
    bg = VideoBackground(path)
    alpha = np.zeros((48, 64), np.float32)
    seen = [shade_index(bg.at(frame(index=i), alpha)) for i in range(11)]
    bg.close()
    assert seen == [i % 4 for i in range(11)]
