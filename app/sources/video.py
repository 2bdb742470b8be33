"""Video files: every frame in order (nothing dropped), optional looping."""
from __future__ import annotations

from pathlib import Path

import cv2

from app.errors import RuntimeFailure
from app.imaging import cover_fit
from app.sources.base import Source
from models.frame import Frame


def open_capture(path: Path) -> cv2.VideoCapture:
    """Open a video file, or fail with a sentence naming it."""
    if not path.is_file():
        raise RuntimeFailure(f"video {path} does not exist; check the path")
    cap = cv2.VideoCapture(str(path))
    ok, _ = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise RuntimeFailure(f"{path} is not a readable video; use an MP4, AVI, MKV or WebM file")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return cap


class VideoFileSource(Source):
    """Decodes a video file; timestamps are media time (index / fps)."""

    live = False

    def __init__(self, path: str | Path, loop: bool = False, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self._cap = open_capture(self.path)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0
        native = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._size = size or native
        self._index = 0
        self.description = f"video {self.path.name}"

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def read(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok and self.loop and self._index > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok:
            return None
        rgb = cover_fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._size)
        frame = Frame(rgb, self._index, self._index / self.fps)
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()
