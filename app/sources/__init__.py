"""Frame sources and the one function that turns a ``--source`` spec into one."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from app.errors import UsageError
from app.imaging import IMAGE_EXTENSIONS, is_video_path
from app.sources.base import Source
from app.sources.camera import CameraSource
from app.sources.image import ImageSource
from app.sources.video import VideoFileSource

DEFAULT_CAMERA_SIZE = (1280, 720)


def is_camera_spec(spec: str) -> bool:
    """A camera index ("0") or a device path ("/dev/video2"), as ``--source`` takes them."""
    return spec.isdigit() or spec.startswith("/dev/video")


def open_source(spec: str, size: tuple[int, int] | None = None, fps: float | None = None,
                loop: bool = False, image_frames: int | None = 1,
                on_status: Callable[[str], None] | None = None, strict_size: bool | None = None) -> Source:
    """Open ``spec``: a camera index, a device path, a video or image file, or ``sample``.

    ``size`` None keeps a file's own resolution; cameras default to 1280×720 and
    report losing and regaining the device through ``on_status``. A camera that
    cannot deliver ``size`` is refused when ``strict_size`` (default: a size was
    asked for); otherwise its frames are scaled.
    """
    if strict_size is None:
        strict_size = size is not None
    if spec == "sample":
        from app.sources.sample import sample_clip_path

        source = VideoFileSource(sample_clip_path(), loop=loop, size=size)
        source.description = "built-in sample clip"
        return source
    if is_camera_spec(spec):
        return CameraSource(int(spec) if spec.isdigit() else spec, size or DEFAULT_CAMERA_SIZE, fps or 30.0,
                            strict_size=strict_size, on_status=on_status)
    path = Path(spec)
    if is_video_path(path):
        return VideoFileSource(path, loop=loop, size=size)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path, size=size, frames=image_frames, fps=fps or 30.0)
    raise UsageError(f"--source {spec!r} is not a camera index, a video or image file, or 'sample'; "
                     "pass e.g. --source 0, --source clip.mp4 or --source sample")


__all__ = ["Source", "open_source", "is_camera_spec", "CameraSource", "VideoFileSource", "ImageSource"]
