"""How many other programs have the virtual camera's device node open (Linux: inotify plus /proc).

The run loop pauses while nobody reads the virtual camera (see :mod:`app.idle`);
this module only counts. :class:`DeviceReaders` watches the node with inotify
(``IN_OPEN`` and ``IN_CLOSE_*``, read without blocking at every :meth:`~DeviceReaders.poll`)
and, whenever events arrived, looks again at which processes hold the node in
``/proc/PID/fd``. The two sources are combined because each misses something:

* /proc cannot see processes of other users, nor processes of ours that made
  themselves undumpable (ssh-agent, gpg-agent): reading their ``fd`` folder is
  refused. Those refusals are normal on every desktop, so they are skipped, not
  taken to mean "unknown"; opens by such processes are still counted from the
  inotify events that /proc does not explain (the "hidden" handles). Only one
  made before the watch started cannot be seen at all (``--always-on`` is the
  remedy).
* inotify merges two identical events that follow each other unread (two opens
  in a row arrive as one), and says nothing about opens made before the watch.
  /proc makes up for that for every handle it sees; only two opens at the same
  moment, one of them by a process /proc cannot see, can still go uncounted.

A /proc scan reads every process's file table (tens of milliseconds on a busy
desktop); it runs when the watch starts and when an app opens or closes the node,
not per frame.

Our own handle is never counted: the sink starts the watch only after
pyvirtualcam has opened the device, so that open causes no event, and the
handles our process holds when the watch starts (pyvirtualcam's) are left out of
every /proc scan. Any later open by our own process (the window's camera list
probing the node) is an ordinary, visible handle and counts while it lasts, which
at worst resumes work for a moment.

A count is open handles, not apps (one app may open the node twice) and not only
readers (a second writer counts too); what matters is zero against not zero.
``poll`` returns None whenever the count cannot be known: not Linux, a path that
is no device node or file (OBS Virtual Camera on Windows/macOS), no inotify, no
/proc, or the node went away. None means "keep working".
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat
import struct
import sys
import threading

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVE_SELF = 0x00000800
IN_DELETE_SELF = 0x00000400
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_CLOSE = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE
#: The watch no longer follows the node (deleted, moved, unmounted, removed).
GONE = IN_MOVE_SELF | IN_DELETE_SELF | IN_UNMOUNT | IN_IGNORED
IN_NONBLOCK = 0o4000  # Linux's O_NONBLOCK (written out: this module must import on every OS)
IN_CLOEXEC = 0o2000000  # Linux's O_CLOEXEC

#: ``struct inotify_event`` without its trailing name: int wd; uint32 mask, cookie, len.
EVENT = struct.Struct("iIII")
#: Where process file tables are read (a constant so that tests can point it elsewhere).
PROC = "/proc"

Handle = tuple[int, int]  # (pid, fd)


def _libc():
    """libc's inotify functions, or None where there are none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_init1.restype = ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def parse_events(data: bytes) -> list[int]:
    """The masks of the ``struct inotify_event`` records in ``data`` (names skipped)."""
    masks, offset = [], 0
    while offset + EVENT.size <= len(data):
        _, mask, _, name_len = EVENT.unpack_from(data, offset)
        masks.append(mask)
        offset += EVENT.size + name_len
    return masks


def open_handles(path: str, proc: str | None = None) -> set[Handle] | None:
    """(pid, fd) of every handle on ``path`` that /proc shows, our own process's included.

    Processes whose file table cannot be read (other users', undumpable ones) or that
    end during the scan are skipped; None when /proc itself cannot be listed.
    """
    proc = PROC if proc is None else proc
    target = os.path.realpath(path)
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    found: set[Handle] = set()
    for pid in pids:
        folder = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(folder)
        except OSError:  # refused, or the process ended
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(folder, fd)) == target:
                    found.add((int(pid), int(fd)))
            except (OSError, ValueError):
                continue
    return found


class DeviceReaders:
    """Counts the handles that other processes hold on the device node ``path``; see the module notes.

    ``poll()`` is cheap (one non-blocking read) unless something opened or closed the
    node since the last call; it is safe to call from several threads.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._visible: set[Handle] = set()
        self._own: set[Handle] = set()  # our handles when the watch started: pyvirtualcam's
        self._hidden = 0  # opens seen by inotify but not in /proc (processes we cannot inspect)
        try:
            self._start()
        except Exception:  # any surprise only means "unknown": the stream keeps working
            log.debug("cannot count the readers of %s", self.path, exc_info=True)
            self.close()

    def _start(self) -> None:
        if self.path is None:
            return
        libc = _libc()
        try:
            mode = os.stat(self.path).st_mode
        except (OSError, ValueError):
            return
        if libc is None or not (stat.S_ISCHR(mode) or stat.S_ISREG(mode)):
            return
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            log.debug("inotify_init1 failed: %s", os.strerror(ctypes.get_errno()))
            return
        self._fd = fd
        if libc.inotify_add_watch(fd, os.fsencode(self.path), IN_OPEN | IN_CLOSE) < 0:
            log.debug("cannot watch %s: %s", self.path, os.strerror(ctypes.get_errno()))
            self.close()
            return
        # Watch first, then scan: an open during the scan is in the scan, and its event (queued
        # meanwhile) is dropped below instead of being counted twice.
        visible = open_handles(self.path)
        if visible is None:
            self.close()
            return
        self._own = {h for h in visible if h[0] == os.getpid()}
        self._visible = visible - self._own
        if self._read() is None:
            self.close()

    def _read(self) -> list[int] | None:
        """Event masks queued so far; None when the inotify descriptor failed."""
        masks: list[int] = []
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return masks
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return None
            if not data:
                return masks
            masks += parse_events(data)

    def poll(self) -> int | None:
        """Handles other processes hold on the node now; None when that cannot be known."""
        with self._lock:
            if self._fd is None:
                return None
            masks = self._read()
            if masks is None or any(m & GONE for m in masks):
                self._close()
                return None
            if masks:
                visible = open_handles(self.path)
                if visible is None:
                    self._close()
                    return None
                visible -= self._own
                opens = sum(1 for m in masks if m & IN_OPEN)
                closes = sum(1 for m in masks if m & IN_CLOSE)
                # Events that /proc explains belong to visible processes; the rest to hidden ones.
                # (Merged events of visible handles are explained by the scan, so they cost nothing.)
                if not any(m & IN_Q_OVERFLOW for m in masks):
                    opened, closed = len(visible - self._visible), len(self._visible - visible)
                    self._hidden = max(0, self._hidden + max(0, opens - opened) - max(0, closes - closed))
                self._visible = visible
            return len(self._visible) + self._hidden

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Stop watching; ``poll`` then returns None."""
        with self._lock:
            self._close()
