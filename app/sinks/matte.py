"""``--output-matte``: the composite's alpha as 8-bit grey, exactly one frame per output frame.

A matte goes to a video file (.mp4, .avi, .mkv, .mov; the video sink) or to a
numbered PNG sequence (a file name with a frame number such as
``matte_%05d.png``; the image-sequence sink). Both write under temporary names
and show the result only when the run completed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.errors import UsageError
from app.sinks.base import Sink
from app.sinks.image_sequence import EXAMPLE, ImageSequenceSink, is_sequence
from app.sinks.threaded import InThread
from app.sinks.video_file import FOURCC, VideoFileSink

OPTION = "--output-matte"


def grey(alpha: np.ndarray) -> np.ndarray:
    """float alpha in [0,1] → uint8 H×W, rounded (0.5 → 128, so 8 bits keep every step of a soft edge)."""
    return (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)


class MatteSink(Sink):
    """Writes the alpha of every output frame through a file sink (``writer``).

    It is one of the run's outputs, so the runner opens it at the output's size and
    rate and closes it with the others: a failed or interrupted run discards it
    with them, and a run into the virtual camera never pauses while a matte is being
    recorded (a file always needs frames). The runner delivers each output picture
    through :meth:`send`; the alpha of that very frame follows through
    :meth:`send_alpha`, which the run calls for every result it emitted.
    """

    def __init__(self, writer: Sink) -> None:
        self.writer = writer
        self.description = f"matte {writer.description}"

    def open(self, size, fps):
        self.writer.open(size, fps)

    def send(self, rgb):
        """The output picture: not written, its alpha comes through :meth:`send_alpha`."""

    def send_alpha(self, alpha: np.ndarray) -> None:
        """The float32 H×W alpha in [0,1] of the frame just sent."""
        self.writer.send(grey(alpha))

    def close(self, success: bool = True):
        self.writer.close(success)


def make_matte_sink(spec: str) -> MatteSink:
    """The sink for ``--output-matte spec``; a folder, a still image or an unknown type is a usage error."""
    path = Path(spec)
    if spec.endswith(("/", os.sep)) or path.is_dir():
        raise UsageError(f"{OPTION} {spec} is a folder; give a video such as {path / 'matte.mp4'} or a PNG "
                         f"sequence such as {path / EXAMPLE}")
    if is_sequence(path) or path.suffix.lower() == ".png":  # a single PNG: the sink says how to number it
        return MatteSink(InThread(ImageSequenceSink(path, OPTION)))
    if path.suffix.lower() in FOURCC:
        return MatteSink(InThread(VideoFileSink(path, OPTION)))
    raise UsageError(f"{OPTION} {spec}: unsupported file type; use a video ({', '.join(sorted(FOURCC))}) or a "
                     f"numbered PNG sequence such as {EXAMPLE}")
