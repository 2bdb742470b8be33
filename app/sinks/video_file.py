"""Video (or still image) files, written under a temporary name and renamed on success."""
from __future__ import annotations

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
        if not self.path.parent.is_dir():
            raise UsageError(f"--output {path}: folder {self.path.parent} does not exist; create it first")
        self.still = suffix in IMAGE_EXTENSIONS
        self.description = f"file {self.path.name}"
        self._file: AtomicFile | None = None
        self._writer: cv2.VideoWriter | None = None
        self._last: np.ndarray | None = None
        self.frames = 0

    def open(self, size, fps):
        self._file = AtomicFile(self.path)
        self.frames = 0
        if not self.still:
            self._writer = cv2.VideoWriter(str(self._file.tmp), cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()]),
                                           fps, size)
            if not self._writer.isOpened():
                self.close(success=False)
                raise RuntimeFailure(f"cannot write video {self.path}; check the folder is writable and the "
                                     "format is supported (.mp4 or .avi)")

    def send(self, rgb):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.still:
            self._last = bgr
        else:
            self._writer.write(bgr)
        self.frames += 1

    def close(self, success: bool = True):
        if self._file is None:
            return
        file, self._file = self._file, None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        ok = success and self.frames > 0
        if ok and self.still:
            ok = cv2.imwrite(str(file.tmp), self._last)
        if ok:
            file.commit()
            return
        file.discard()
        if success:
            raise RuntimeFailure(f"nothing was written to {self.path}: no frame was produced")
