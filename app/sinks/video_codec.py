"""Which encoder writes an ``.mp4``: H.264 where PyAV or OpenCV can write it, else MPEG-4 Part 2.

Browsers and many editors play H.264 but not MPEG-4 Part 2 (``mp4v``). OpenCV's pip
wheels carry an FFmpeg without an H.264 encoder that works (it lists a V4L2 hardware
one that needs a device), while PyAV's wheels carry libx264. A listed encoder can
still fail to open, so each candidate is tried once per process on a small temporary
file and trusted only when the file it wrote says ``avc1`` in its sample description.
"""
from __future__ import annotations

import functools
import logging
import os
import struct
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from models.ops.native_logs import quiet_native_logs

log = logging.getLogger(__name__)

#: The containers that get H.264; the others keep their OpenCV fourcc.
H264_SUFFIXES = (".mp4", ".m4v", ".mov")
#: libx264's fastest preset: it costs about what OpenCV's mp4v did (about 21 ms per 1280×720 frame on
#: the 2-core machine), so recording a live stream is no slower than before; CRF 20 looks like the source.
X264_OPTIONS = {"preset": "ultrafast", "crf": "20"}
#: The box path to the sample descriptions of an ISO base media file (.mp4, .mov).
_STSD_PATH = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")


class FrameWriter(Protocol):
    """Writes RGB uint8 H×W×3 frames of one size to one file, each converted once to what its encoder takes."""

    def write(self, rgb: np.ndarray) -> None: ...

    def release(self) -> None: ...


class OpenCVWriter:
    """``cv2.VideoWriter`` with a fourcc; raises OSError when OpenCV cannot open it."""

    def __init__(self, path: Path, fourcc: str, size: tuple[int, int], fps: float) -> None:
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write {fourcc} to {path.suffix}")

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # OpenCV's writers take BGR

    def release(self) -> None:
        self._writer.release()


class PyAVWriter:
    """H.264 through PyAV's libx264, in 4:2:0 (the chroma layout every player decodes).

    4:2:0 needs even sides: an odd width or height loses its last column or row, as OpenCV's
    FFmpeg writer does with every codec.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        import av

        self._width, self._height = size[0] & ~1, size[1] & ~1
        self._container = av.open(str(path), "w")
        try:
            self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            self._stream.width, self._stream.height = self._width, self._height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = dict(X264_OPTIONS)
        except BaseException:
            self._container.close()
            raise

    def write(self, rgb: np.ndarray) -> None:
        import av

        if rgb.shape[:2] != (self._height, self._width):
            rgb = np.ascontiguousarray(rgb[:self._height, :self._width])
        # RGB as it comes: the encoder's conversion to 4:2:0 is the only one.
        self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))

    def release(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))  # the frames the encoder still holds
        finally:
            self._container.close()


@dataclass(frozen=True)
class Encoder:
    """One way to write a video: its name for messages and how to open a writer."""

    name: str
    open: Callable[[Path, tuple[int, int], float], FrameWriter]


def _pyav_h264(path: Path, size: tuple[int, int], fps: float) -> FrameWriter:
    return PyAVWriter(path, size, fps)


def _opencv_h264(path: Path, size: tuple[int, int], fps: float) -> FrameWriter:
    return OpenCVWriter(path, "avc1", size, fps)


#: H.264 encoders in order of preference (PyAV first: its encoder settings are ours to choose).
H264_ENCODERS = (Encoder("PyAV (libx264)", _pyav_h264), Encoder("OpenCV (avc1)", _opencv_h264))


def sample_entry(path: str | os.PathLike) -> str | None:
    """The codec of the first track of an .mp4/.mov as its sample description says (``avc1`` for H.264,
    ``mp4v`` for MPEG-4 Part 2), or None when the file has none."""
    data = Path(path).read_bytes()
    start, end = 0, len(data)
    for name in _STSD_PATH:
        found = _find_box(data, start, end, name)
        if found is None:
            return None
        start, end = found
    # stsd: version/flags (4 bytes), entry count (4), then entries of size (4) and type (4).
    if end - start < 16:
        return None
    return data[start + 12:start + 16].decode("latin-1")


def _find_box(data: bytes, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    """(payload start, end) of the first box called ``name`` among the boxes in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:  # a 64-bit size follows the type
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - start
        if size < header:
            return None
        if kind == name:
            return start + header, min(start + size, end)
        start += size
    return None


def _writes_h264(encoder: Encoder, folder: Path) -> bool:
    """Whether ``encoder`` writes a small file whose sample description is H.264."""
    path = folder / "probe.mp4"
    frame = np.zeros((48, 64, 3), np.uint8)
    try:
        with quiet_native_logs():  # a failed try is expected; --debug shows why
            writer = encoder.open(path, (64, 48), 30.0)
            try:
                for _ in range(2):
                    writer.write(frame)
            finally:
                writer.release()
        return sample_entry(path) == "avc1"
    except Exception as exc:  # any failure means "not this one"; the reason helps in --debug logs
        log.debug("%s cannot write H.264 here: %s", encoder.name, exc)
        return False
    finally:
        path.unlink(missing_ok=True)


@functools.cache
def h264_encoder() -> Encoder | None:
    """The first encoder that writes H.264 here, or None after one warning that files will be mp4v."""
    with tempfile.TemporaryDirectory(prefix="harmonicam-codec-") as folder:
        for encoder in H264_ENCODERS:
            if _writes_h264(encoder, Path(folder)):
                log.debug("H.264 files are written by %s", encoder.name)
                return encoder
    log.warning("neither PyAV nor this OpenCV can write H.264 here, so .mp4 files are MPEG-4 Part 2 (mp4v), "
                "which browsers and some editors do not play; 'pip install av' gives H.264")
    return None
