"""Video files: every frame in order (nothing dropped), optional looping."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import cv2

from app.errors import RuntimeFailure
from app.imaging import check_frame_size, cover_fit
from app.sources.base import Source
from models.frame import Frame

log = logging.getLogger(__name__)

if not (os.environ.get("OPENCV_FFMPEG_DEBUG") or logging.getLogger().isEnabledFor(logging.DEBUG)):
    # FFmpeg prints its own lines ("moov atom not found", …) for damaged files, where we say one
    # sentence instead. OpenCV reads this when it opens the first video file of the process, so
    # it is set on import, before any file is opened; --debug (set up before this import) keeps them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

#: Reported rates outside this range (0, NaN, 1000 from a variable-rate or damaged file) are not believed.
FPS_RANGE = (1.0, 240.0)
#: What such a file plays at.
FALLBACK_FPS = 30.0


def sane_fps(reported: float) -> float:
    """The file's frame rate when it is believable, else :data:`FALLBACK_FPS`."""
    lo, hi = FPS_RANGE
    return reported if math.isfinite(reported) and lo <= reported <= hi else FALLBACK_FPS


def _open(path: Path) -> tuple[cv2.VideoCapture, tuple[int, int]]:
    """A capture positioned at the first frame, and the (width, height) of that frame."""
    if path.is_dir():
        raise RuntimeFailure(f"{path} is a folder, not a video file; pass the path of a video file")
    if not path.is_file():
        raise RuntimeFailure(f"video {path} does not exist; check the path")
    unreadable = f"{path} is not a readable video"
    what = "use an MP4, AVI, MKV or WebM file"
    cap = None
    try:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            raise RuntimeFailure(f"{unreadable} (damaged, truncated or not a video); {what}")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise RuntimeFailure(f"{unreadable} (it holds no frame that can be decoded); {what}")
        if not cap.set(cv2.CAP_PROP_POS_FRAMES, 0) or cap.get(cv2.CAP_PROP_POS_FRAMES) != 0:
            cap.release()  # cannot seek back: start again from the beginning
            cap = cv2.VideoCapture(str(path))
    except cv2.error:
        if cap is not None:
            cap.release()
        raise RuntimeFailure(f"{unreadable} (the decoder failed on it); {what}") from None
    return cap, (first.shape[1], first.shape[0])


def open_capture(path: Path) -> cv2.VideoCapture:
    """Open a video file at its first frame, or fail with a sentence naming it.

    A folder, a missing or empty file, text named .mp4, a file without frames or one
    whose header is cut off are each a :class:`RuntimeFailure`.
    """
    return _open(Path(path))[0]


class VideoFileSource(Source):
    """Decodes a video file; timestamps are media time (index / fps).

    ``fps`` is the file's rate when it lies in :data:`FPS_RANGE`, else 30 (files
    that report 0, NaN or e.g. 1000 FPS; a variable-rate file plays at its average).
    ``size`` None keeps the file's own size, which must be a frame size the pipeline
    takes (16x16 … 7680x4320); with ``size`` every frame is cover-fit to it. A file
    that ends early (truncated) just ends, with a note in the log.
    """

    live = False

    def __init__(self, path: str | Path, loop: bool = False, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self._cap, native = _open(self.path)
        try:
            if not size:
                check_frame_size(native, f"video {self.path}")
        except RuntimeFailure:
            self._cap.release()
            raise
        self.fps = sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self._reported_frames = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._size = size or native
        self._index = 0
        self._pass_index = 0  # frames decoded since the last rewind
        self.description = f"video {self.path.name}"

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def _read(self):
        try:
            return self._cap.read()
        except cv2.error:  # a damaged packet deep in the file: treat as its end
            return False, None

    def read(self) -> Frame | None:
        ok, bgr = self._read()
        if not ok:
            self._note_early_end()
        if not ok and self.loop and self._index > 0:
            self._pass_index = 0
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._read()
            if not ok:  # seeking back failed: open the file again
                self._cap.release()
                self._cap = open_capture(self.path)
                ok, bgr = self._read()
        if not ok:
            return None
        self._pass_index += 1
        rgb = cover_fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._size)
        frame = Frame(rgb, self._index, self._index / self.fps)
        self._index += 1
        return frame

    def _note_early_end(self) -> None:
        expected = self._reported_frames
        # Frame counts of some containers are estimates: only a clear shortfall is reported.
        if math.isfinite(expected) and 0 < self._pass_index < 0.98 * expected - 1 and self._index == self._pass_index:
            log.warning("%s ended after %d of its %d frames; the file may be truncated",
                        self.path.name, self._pass_index, int(expected))
            self._reported_frames = math.nan  # said once

    def close(self) -> None:
        self._cap.release()
