"""A file sink that works on a thread of its own, so the frame loop never waits for the encoder.

Converting a 720p frame to BGR and encoding it takes several milliseconds on a laptop CPU;
done in the frame loop, that time was added to every frame and ``run`` into a file was
slower than ``bench`` (which writes nowhere). Here the loop hands each finished frame
over through a short queue and goes on; a second thread converts and encodes. The
queue is bounded, so a slow disk slows the loop instead of filling memory, and no frame
is dropped: a file needs every one. An error of the writer reaches the loop at the
next frame (or at ``close``), as it would have without the thread.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from app.sinks.base import Sink

#: Frames waiting for the writer at most: enough to ride out one slow frame of the encoder.
DEPTH = 3
_END = object()


class InThread(Sink):
    """``sink`` fed from a thread of its own. The frame loop hands over each frame and never writes to it
    again (every frame is a new array), so frames are queued without a copy."""

    def __init__(self, sink: Sink, depth: int = DEPTH) -> None:
        self.sink = sink
        self.description = sink.description
        self.realtime = sink.realtime
        self._queue: queue.Queue = queue.Queue(depth)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def open(self, size, fps):
        self._stop(drain=False)
        self._error = None
        self.sink.open(size, fps)
        self._thread = threading.Thread(target=self._write, name=f"writer {self.description}", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while (rgb := self._queue.get()) is not _END:
            if self._error is None:  # after an error the rest is drained unwritten: the file is discarded
                try:
                    self.sink.send(rgb)
                except BaseException as exc:  # noqa: BLE001 - handed to the frame loop, which reports it
                    self._error = exc

    def send(self, rgb: np.ndarray) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._queue.put(rgb)

    def readers(self) -> int | None:
        return self.sink.readers()

    def _stop(self, drain: bool) -> None:
        """Let the writer finish what is queued (``drain``) or drop it, then end the thread."""
        if self._thread is None:
            return
        if not drain:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        self._queue.put(_END)
        self._thread.join()
        self._thread = None

    def close(self, success: bool = True) -> None:
        try:
            self._stop(drain=success)
        finally:
            if self._thread is not None:  # interrupted while waiting: the writer stops before its file closes
                self._stop(drain=False)
            error, self._error = self._error, None
            self.sink.close(success and error is None)
        if error is not None and success:
            raise error
