"""Silencing what native libraries print straight to the process's standard error.

MediaPipe's C++ start-up chatter (EGL, XNNPACK, feedback tensors) and FFmpeg's complaints about an
encoder that cannot open are written to file descriptor 2, where Python's logging cannot filter them.

File descriptor 2 belongs to the whole process, and several threads make MediaPipe graphs (the frame
loop, the pose worker, the landmark models) while others log (a camera that stops delivering frames).
So the quiet is counted: the first thread to ask for it points descriptor 2 at /dev/null and the last
to leave points it back (two windows that overlap never leave it pointing at /dev/null), and meanwhile
Python's own ``sys.stderr`` writes to a copy of the real standard error, so a log record of any thread
still reaches the console.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import warnings
from typing import Iterator, TextIO


class _Console(io.TextIOBase):
    """``sys.stderr``'s stand-in while the quiet lasts: writes to a copy of the real standard error, and once
    released (the quiet is over, though a thread may still hold it) to the stream it stood in for."""

    def __init__(self, fd: int, stood_in_for: TextIO) -> None:
        super().__init__()
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self.stood_in_for = stood_in_for
        self._encoding = getattr(stood_in_for, "encoding", None) or "utf-8"

    @property
    def encoding(self) -> str:
        return self._encoding

    def write(self, text: str) -> int:
        with self._lock:
            if self._fd is not None:
                data = text.encode(self._encoding, "backslashreplace")
                while data:
                    data = data[os.write(self._fd, data):]
                return len(text)
        return self.stood_in_for.write(text)

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class _Quiet:
    """The process-wide state of the quiet: how many windows are open and what they replaced."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved_fd: int | None = None     # the real standard error while descriptor 2 is /dev/null
        self.console: _Console | None = None  # Python's sys.stderr meanwhile
        self.filters: list | None = None     # the warning filters before the quiet

    def enter(self) -> None:
        with self.lock:
            if self.depth == 0:
                self._silence()
            self.depth += 1  # only once silenced: a failed start leaves no window counted that was never opened

    def _silence(self) -> None:
        """Descriptor 2 to /dev/null, ``sys.stderr`` to a copy of the real one, warnings off (under the lock)."""
        sys.stderr.flush()
        self.saved_fd = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        if _writes_to_fd2(sys.stderr):
            self.console = _Console(os.dup(self.saved_fd), sys.stderr)
            sys.stderr = self.console
        self.filters = warnings.filters[:]
        warnings.simplefilter("ignore")

    def leave(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth > 0:
                return
            warnings.filters[:] = self.filters or []
            # As catch_warnings does on exit: the modules' registries of warnings shown start afresh.
            getattr(warnings, "_filters_mutated", lambda: None)()
            if self.console is not None:
                if sys.stderr is self.console:
                    sys.stderr = self.console.stood_in_for
                self.console.release()
                self.console = None
            os.dup2(self.saved_fd, 2)
            os.close(self.saved_fd)
            self.saved_fd = None


def _writes_to_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's StringIO, a closed stream
        return False


_QUIET = _Quiet()


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (and ignore Python warnings) for the duration, unless debugging;
    Python's ``sys.stderr`` keeps writing to the real standard error meanwhile."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    _QUIET.enter()
    try:
        yield
    finally:
        _QUIET.leave()
