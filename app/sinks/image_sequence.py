"""Numbered PNG files (``matte_%05d.png``) that appear under their names only once the run is complete.

The frames are written into a hidden folder beside the target
(``.NAME.xxxx.partial``) and moved into place, each move atomic, when the sink
closes successfully; on every other path (``close(success=False)``, an error, an
interruption) that folder is removed and nothing of the run is left. Numbering
starts at 0, like the frames of a video, so file N is the output's frame N. A
longer sequence of the same name from an earlier run loses its surplus frames:
what is on disk is always exactly this run's sequence.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.errors import RuntimeFailure, UsageError
from app.sinks.base import Sink
from app.sinks.paths import check_folder, write_failure

#: The printf tokens of a file name: a literal ``%%``, a frame number (``%d``, ``%05d``) or a stray ``%``.
PRINTF_TOKEN = re.compile(r"%%|%0?\d*d|%")
EXAMPLE = "matte_%05d.png"


def is_sequence(path: str | Path) -> bool:
    """Whether ``path`` names a numbered sequence (its file name holds a printf-style ``%``)."""
    return "%" in Path(path).name


class ImageSequenceSink(Sink):
    """One PNG per frame: RGB frames as colour PNGs, grey H×W frames (mattes) as 8-bit grayscale PNGs."""

    def __init__(self, pattern: str | Path, option: str) -> None:
        """``pattern``: a path whose file name holds one frame number; ``option`` names it in error sentences."""
        self.pattern = Path(pattern)
        tokens = PRINTF_TOKEN.findall(self.pattern.name)
        if sum(t not in ("%%", "%") for t in tokens) != 1 or "%" in tokens:
            raise UsageError(f"{option} {pattern}: a PNG sequence needs exactly one frame number in its file name, "
                             f"such as {EXAMPLE} (write %% for a literal %)")
        if self.pattern.suffix.lower() != ".png":
            raise UsageError(f"{option} {pattern}: a sequence is written as PNG files; end the name in .png, "
                             f"such as {EXAMPLE}")
        check_folder(self.pattern, option)
        self.description = f"PNG sequence {self.pattern.name}"
        self._partial: Path | None = None
        self.frames = 0

    def frame_name(self, index: int) -> str:
        return self.pattern.name % index

    def open(self, size, fps):
        self.close(success=False)  # a second open starts over
        self.frames = 0
        try:
            self._partial = Path(tempfile.mkdtemp(prefix=f".{self.pattern.stem}.", suffix=".partial",
                                                  dir=self.pattern.parent))
        except OSError as exc:
            raise write_failure(self.pattern, exc) from exc

    def send(self, rgb: np.ndarray) -> None:
        """One RGB H×W×3 frame, or a grey H×W one (a matte)."""
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
        name = self.frame_name(self.frames)
        if not cv2.imwrite(str(self._partial / name), image):
            raise RuntimeFailure(f"cannot write {self.pattern.parent / name}; check the folder is writable and has "
                                 "space")
        self.frames += 1

    def close(self, success: bool = True) -> None:
        """Move the finished frames into place; ``success`` False (or no frame) removes them instead."""
        if self._partial is None:
            return
        partial, self._partial = self._partial, None
        try:
            if success and self.frames > 0:
                self._move_into_place(partial)
        finally:  # on every path, even an interruption while moving
            shutil.rmtree(partial, ignore_errors=True)
        if success and self.frames == 0:
            raise RuntimeFailure(f"nothing was written to {self.pattern}: no frame was produced")

    def _move_into_place(self, partial: Path) -> None:
        folder = self.pattern.parent
        try:
            for index in range(self.frames):
                name = self.frame_name(index)
                os.replace(partial / name, folder / name)
            index = self.frames
            while (stale := folder / self.frame_name(index)).is_file():  # the tail of an earlier, longer run
                stale.unlink()
                index += 1
        except OSError as exc:
            raise write_failure(self.pattern, exc) from exc
