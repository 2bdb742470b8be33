"""Video (or still image) files, written under a temporary name and renamed on success.

The temporary file (``.NAME.xxxx.partial.EXT`` beside the output) is removed on
every other path: ``close(success=False)``, an error while opening, and an
interruption (Ctrl+C, SIGTERM, SIGHUP) at any point of opening or closing.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure, UsageError
from app.imaging import IMAGE_EXTENSIONS
from app.sinks.base import Sink
from models.ops.files import AtomicFile

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoFileSink(Sink):
    """Writes every frame at the source's frame rate; a still-image path keeps the last frame."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC and suffix not in IMAGE_EXTENSIONS:
            raise UsageError(f"--output {path}: unsupported file type; use .mp4, .avi, .mkv, .mov or an image "
                             "extension such as .png")
        if self.path.is_dir():
            raise UsageError(f"--output {path}: this is a folder; give a file name such as {self.path / 'out.mp4'}")
        if not self.path.parent.is_dir():
            raise UsageError(f"--output {path}: folder {self.path.parent} does not exist; create it first")
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise UsageError(f"--output {path}: folder {self.path.parent} is not writable; choose another folder")
        self.still = suffix in IMAGE_EXTENSIONS
        self.description = f"file {self.path.name}"
        self._file: AtomicFile | None = None
        self._writer: cv2.VideoWriter | None = None
        self._last: np.ndarray | None = None
        self.frames = 0

    def open(self, size, fps):
        self.close(success=False)  # a second open starts over
        self.frames = 0
        self._last = None
        try:
            self._file = AtomicFile(self.path)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {self.path} ({exc.strerror}); check that the folder is "
                                 "writable") from exc
        try:
            if not self.still:
                fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
                self._writer = cv2.VideoWriter(str(self._file.tmp), fourcc, fps, size)
                if not self._writer.isOpened():
                    raise RuntimeFailure(f"cannot write video {self.path}; check the folder is writable and the "
                                         "format is supported (.mp4 or .avi)")
        except BaseException:  # also Ctrl+C or SIGTERM: the runner closes only the sinks that opened
            self.close(success=False)
            raise

    def send(self, rgb):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.still:
            self._last = bgr
        else:
            self._writer.write(bgr)
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
