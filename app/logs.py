"""Where the log goes: the console (short lines) and a rotating file in the platform's log folder.

The file keeps what the console shows, with times, levels and the tracebacks of
errors, so a report from a user can include it. ``--debug`` raises both to DEBUG.
If the folder cannot be created or the file cannot be opened, the app runs on
with the console only; a log file never stops or clutters a run.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

APP = "harmonicam"
LOG_NAME = "harmonicam.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
CONSOLE_FORMAT = "harmonicam: %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"

#: ``extra=FILE_ONLY`` keeps a record out of the console (it already printed its own sentence).
FILE_ONLY = {"harmonicam_file_only": True}


def log_dir() -> Path:
    """Linux: $XDG_STATE_HOME/harmonicam (~/.local/state/harmonicam); macOS: ~/Library/Logs/harmonicam;
    Windows: %LOCALAPPDATA%\\harmonicam\\Logs."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP / "Logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / APP
    state = os.environ.get("XDG_STATE_HOME", "")
    # The XDG spec: a relative path is invalid and must be ignored.
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / APP


def log_path() -> Path:
    return log_dir() / LOG_NAME


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after setup, as tests do)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self.addFilter(lambda record: not getattr(record, "harmonicam_file_only", False))

    @property
    def stream(self):
        return sys.stderr


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """1 MB × (1 + 3 backups). A write or rotation that fails (a full disk, another process holding the
    file on Windows) is dropped silently instead of printing a traceback on the console."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _ours(handler: logging.Handler) -> bool:
    return getattr(handler, "harmonicam", False)


def setup_logging(debug: bool = False, console: bool | None = None) -> Path | None:
    """Send log records to the console and to :func:`log_path`; returns the file, or None when there is none.

    ``console`` None adds the console handler only when the root logger has no other
    handler, as ``logging.basicConfig`` does: a program (or test runner) that set up
    logging itself keeps its own console output. Calling it again (tests run ``main``
    many times) replaces the handlers it added before and leaves any others alone.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
        handler.close()
    level = logging.DEBUG if debug else logging.INFO
    root.setLevel(level)
    if console or (console is None and not root.handlers):
        handler = ConsoleHandler()
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        handler.harmonicam = True
        root.addHandler(handler)
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = LogFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(APP).debug("no log file (%s); logging to the console only", exc)
        return None
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.harmonicam = True
    root.addHandler(handler)
    return path
