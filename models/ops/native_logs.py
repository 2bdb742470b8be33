"""Silencing what native libraries print straight to the process's standard error.

MediaPipe's C++ start-up chatter (EGL, XNNPACK, feedback tensors) and FFmpeg's complaints about an
encoder that cannot open are written to file descriptor 2, where Python's logging cannot filter them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (and ignore Python warnings) for the duration, unless debugging."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
