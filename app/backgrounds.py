"""Complete backgrounds: image, looping video, blur of the camera frame, solid colour.

``at(frame, alpha)`` returns the whole new background at frame size, where the
frame lives (host memory or the pipeline's device); later
stages (blending, harmonizers) receive it as the *complete* background.
``version`` changes when the user picks another background, so statistics a
harmonizer derived from it can be dropped.
"""
from __future__ import annotations

import abc
import itertools
import re
import time
from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure, UsageError
from app.imaging import IMAGE_EXTENSIONS, cover_fit, is_video_path, read_rgb
from app.sources.video import open_capture, sane_fps
from models.frame import Frame, Image
from models.ops.blur import masked_blur, masked_blur_tensor
from models.ops.tensor_image import upload

#: The backgrounds that ship with the app (assets/backgrounds in the repository).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "backgrounds"

_versions = itertools.count(1)


class Background(abc.ABC):
    """One background choice; a new instance is a new ``version``.

    Subclasses produce the picture in host memory (``_host``); for a frame on a
    device the picture is uploaded once per new picture (an image or colour
    background is uploaded once per choice and size) and cached there.
    """

    description = ""

    def __init__(self) -> None:
        self.version = next(_versions)
        self._uploaded: tuple[np.ndarray, Image] | None = None

    def at(self, frame: Frame, alpha: Image) -> Image:
        """The complete background for ``frame``, where the frame's image lives."""
        host = self._host(frame, alpha)
        if frame.pixels is None:
            return host
        if self._uploaded is None or self._uploaded[0] is not host:
            self._uploaded = (host, upload(host, frame.pixels.device))
        return self._uploaded[1]

    def reset_device_cache(self) -> None:
        """Forget the uploaded copy (the device it lived on failed)."""
        self._uploaded = None

    @abc.abstractmethod
    def _host(self, frame: Frame, alpha: Image) -> np.ndarray:
        """The complete background (uint8 H×W×3) for ``frame``."""

    def close(self) -> None:
        """Release files."""


class _SizeCache:
    """Remembers the last image produced per size (backgrounds rarely change size)."""

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None
        self._image: np.ndarray | None = None

    def get(self, size: tuple[int, int], make) -> np.ndarray:
        if size != self._size:
            self._image = make(size)
            self._image.setflags(write=False)
            self._size = size
        return self._image


class ColourBackground(Background):
    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self.rgb = rgb
        self.description = "colour #%02x%02x%02x" % rgb
        self._cache = _SizeCache()

    def _host(self, frame, alpha):
        return self._cache.get(frame.size, lambda s: np.full((s[1], s[0], 3), self.rgb, np.uint8))


class ImageBackground(Background):
    """A picture, cover-fit to the frame's aspect (cropped, never stretched).

    Any size the decoder takes works (1x1 up to 2^30 pixels, see
    :func:`models.io.read_image_rgb`): it is scaled to each frame size once.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._rgb = read_rgb(self.path)
        self.description = f"image {self.path.name}"
        self._cache = _SizeCache()

    def _host(self, frame, alpha):
        return self._cache.get(frame.size, lambda s: cover_fit(self._rgb, s))


class VideoBackground(Background):
    """A looping video. Frame-locked to file sources (background frame i with
    source frame i); paced by wall-clock time for live sources.

    Any frame size works (each frame is cover-fit); an unbelievable frame rate
    (0, 1000 …) is taken as 30 FPS; a truncated file loops over the frames it has.
    """

    def __init__(self, path: str | Path, frame_locked: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.frame_locked = frame_locked
        self._cap = open_capture(self.path)
        self.fps = sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self.description = f"video {self.path.name}"
        self._pos = -1  # index of the decoded frame held in _raw
        self._count: int | None = None  # frames in one loop, learnt at the first end of file
        self._raw: np.ndarray | None = None
        self._fitted: np.ndarray | None = None
        self._fitted_key: tuple | None = None
        self._start: float | None = None

    def _target_index(self, frame: Frame) -> int:
        if self.frame_locked:
            i = frame.index
        else:
            now = time.monotonic()
            self._start = now if self._start is None else self._start
            i = int((now - self._start) * self.fps)
        return i % self._count if self._count else i

    def _rewind(self) -> None:
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._pos = -1

    def _read(self):
        try:
            return self._cap.read()
        except cv2.error:  # a damaged packet: treat it as the end of the file
            return False, None

    def _decode_to(self, target: int) -> None:
        if target < self._pos:  # wrapped around
            self._rewind()
        reopened = False
        while self._pos < target:
            ok, bgr = self._read()
            if not ok and self._pos < 0:
                # Nothing decodes after seeking back to the start: open the file again (once in a row).
                if reopened:
                    raise RuntimeFailure(f"background video {self.path} cannot be played from its start "
                                         "again; convert it to MP4 (H.264) and choose it again")
                self._cap.release()
                self._cap = open_capture(self.path)
                reopened = True
                continue
            if not ok:  # end of file: now the loop length is known
                self._count = self._pos + 1
                self._rewind()
                target %= self._count
                continue
            reopened = False
            self._pos += 1
            if self._pos == target:
                self._raw = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _host(self, frame, alpha):
        target = self._target_index(frame)
        if target != self._pos:
            self._decode_to(target)
        key = (self._pos, frame.size)
        if key != self._fitted_key:
            self._fitted = cover_fit(self._raw, frame.size)
            self._fitted_key = key
        return self._fitted

    def close(self) -> None:
        self._cap.release()


class BlurBackground(Background):
    """The camera frame blurred, with the person's pixels excluded from the blur.

    A plain blur smears the person into the background (a halo). Weighting by
    1−α and normalising — blur(F·(1−α)) / blur(1−α) — averages background
    pixels only. Done on a quarter-size copy; the result is smooth anyway.
    """

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        if not 0 < strength <= 10:
            raise UsageError(f"blur strength {strength:g} is out of range; use a value in (0, 10], e.g. blur:1")
        self.strength = strength
        self.description = f"blur {strength:g}"

    def at(self, frame, alpha):
        if frame.pixels is not None:  # blurred where the frame is: nothing to upload
            return masked_blur_tensor(frame.pixels, alpha, self.strength)
        return self._host(frame, alpha)

    def _host(self, frame, alpha):
        return masked_blur(frame.rgb, alpha, self.strength)


_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_background(spec: str, frame_locked: bool = True) -> Background:
    """``image path | video path | blur[:strength] | #rrggbb`` → a Background."""
    if spec == "blur" or spec.startswith("blur:"):
        value = spec.partition(":")[2] or "1"
        try:
            return BlurBackground(float(value))
        except ValueError:
            raise UsageError(f"--background {spec!r}: blur strength must be a number, e.g. blur:1.5") from None
    match = _COLOUR.match(spec)
    if match and not Path(spec).exists():
        hexv = match.group(1)
        return ColourBackground(tuple(int(hexv[i:i + 2], 16) for i in (0, 2, 4)))
    path = Path(spec)
    if is_video_path(path):
        return VideoBackground(path, frame_locked=frame_locked)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageBackground(path)
    raise UsageError(f"--background {spec!r} is not an image or video file, blur[:strength] or #rrggbb; "
                     "pass e.g. --background beach.jpg, --background blur:1 or --background '#336699'")
