"""The source interface: frames in stream order."""
from __future__ import annotations

import abc

from models.frame import Frame


class Source(abc.ABC):
    """Yields ``Frame``s. Live sources drop stale frames; file sources yield every frame."""

    #: True for cameras: frames arrive in real time and the newest one wins.
    live: bool = False
    #: Nominal frame rate (frames per second).
    fps: float = 30.0
    #: Human-readable description for logs and the GUI.
    description: str = ""

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None at the end of a finite source."""

    @property
    @abc.abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames this source yields."""

    def set_paused(self, paused: bool) -> None:
        """Nobody needs frames for a while (True) or again (False); ``read`` is not called meanwhile.
        A file just waits where it is; a camera stops capturing."""

    def interrupt(self) -> None:
        """From any thread: a ``read`` in progress, and every later one, returns None at once (a camera's
        read can wait for a device that is gone). Closing first interrupts; a file has nothing to interrupt."""

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
