"""Video (or still image) files, written under a temporary name and renamed on success.

``.mp4``, ``.m4v`` and ``.mov`` are H.264 where PyAV or OpenCV can write it (see
:mod:`app.sinks.video_codec`), else MPEG-4 Part 2; ``.avi`` and ``.mkv`` are Motion JPEG.

The temporary file (``.NAME.xxxx.partial.EXT`` beside the output) is removed on
every other path: ``close(success=False)``, an error while opening, and an
interruption (Ctrl+C, SIGTERM, SIGHUP) at any point of opening or closing.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure, UsageError
from app.imaging import IMAGE_EXTENSIONS
from app.sinks.base import Sink
from app.sinks.paths import check_folder, write_failure
from app.sinks.video_codec import H264_SUFFIXES, FrameWriter, OpenCVWriter, h264_encoder
from models.ops.files import AtomicFile

#: OpenCV's fourcc per container, when H.264 is not written.
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoFileSink(Sink):
    """Writes every frame at the source's frame rate; a still-image path keeps the last frame."""

    def __init__(self, path: str | Path, option: str = "--output") -> None:
        """``option``: the command-line option that named ``path``, for the error sentences."""
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC and suffix not in IMAGE_EXTENSIONS:
            raise UsageError(f"{option} {path}: unsupported file type; use .mp4, .avi, .mkv, .mov or an image "
                             "extension such as .png")
        if self.path.is_dir():
            raise UsageError(f"{option} {path}: this is a folder; give a file name such as {self.path / 'out.mp4'}")
        check_folder(self.path, option)
        self.still = suffix in IMAGE_EXTENSIONS
        self.description = f"file {self.path.name}"
        self._file: AtomicFile | None = None
        self._writer: FrameWriter | None = None
        self._last: np.ndarray | None = None
        self.frames = 0

    def open(self, size, fps):
        self.close(success=False)  # a second open starts over
        self.frames = 0
        self._last = None
        try:
            self._file = AtomicFile(self.path)
        except OSError as exc:
            raise write_failure(self.path, exc) from exc
        try:
            if not self.still:
                self._writer = self._open_writer(size, fps)
        except BaseException:  # also Ctrl+C or SIGTERM: the runner closes only the sinks that opened
            self.close(success=False)
            raise

    def _open_writer(self, size: tuple[int, int], fps: float) -> FrameWriter:
        """H.264 where it can be written, else OpenCV's fourcc for the container."""
        suffix = self.path.suffix.lower()
        encoder = h264_encoder() if suffix in H264_SUFFIXES else None
        try:
            if encoder is not None:
                return encoder.open(self._file.tmp, size, fps)
            return OpenCVWriter(self._file.tmp, FOURCC[suffix], size, fps)
        except Exception as exc:  # OpenCV says only "not opened"; PyAV raises its own errors
            raise RuntimeFailure(f"cannot write video {self.path}; check the folder is writable and has "
                                 "space") from exc

    def send(self, rgb):
        """One RGB H×W×3 frame, or a grey H×W one (a matte)."""
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        if self.still:
            self._last = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # for cv2.imwrite
        else:
            self._writer.write(rgb)
        self.frames += 1

    def close(self, success: bool = True):
        """Rename the finished file onto the output; ``success`` False (or no frame) deletes it instead."""
        if self._file is None:
            return
        file, self._file = self._file, None
        writer, self._writer = self._writer, None
        committed = False
        try:
            if writer is not None:
                writer.release()
            if success and self.frames > 0:
                if self.still and not cv2.imwrite(str(file.tmp), self._last):
                    raise RuntimeFailure(f"cannot write image {self.path}; check the folder is writable and "
                                         "has space")
                file.commit()
                committed = True
        finally:
            if not committed:  # on every other path, even an interruption inside release()
                file.discard()
        if success and not committed:
            raise RuntimeFailure(f"nothing was written to {self.path}: no frame was produced")
