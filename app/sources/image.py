"""A still image as a source: the same picture, as a stream of frames."""
from __future__ import annotations

from pathlib import Path

from app.imaging import check_frame_size, cover_fit, read_rgb
from app.sources.base import Source
from models.frame import Frame


class ImageSource(Source):
    """Repeats one image; ``frames`` limits the count (None: endless).

    With ``size`` the picture is cover-fit to it (any picture size, 1x1 included);
    without, its own size is the frame size and must be at least 16x16.
    """

    live = False

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None, frames: int | None = 1,
                 fps: float = 30.0) -> None:
        self.path = Path(path)
        rgb = read_rgb(self.path)
        if not size:
            check_frame_size((rgb.shape[1], rgb.shape[0]), f"image {self.path}")
        self._rgb = cover_fit(rgb, size) if size else rgb
        self._rgb.setflags(write=False)
        self._frames = frames
        self._index = 0
        self.fps = fps
        self.description = f"image {self.path.name}"

    @property
    def size(self) -> tuple[int, int]:
        return self._rgb.shape[1], self._rgb.shape[0]

    def read(self) -> Frame | None:
        if self._frames is not None and self._index >= self._frames:
            return None
        frame = Frame(self._rgb, self._index, self._index / self.fps)
        self._index += 1
        return frame
