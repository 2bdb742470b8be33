"""Counting the other programs that hold the virtual camera's device node open (inotify + /proc).

inotify and /proc work on regular files as on device nodes, so a temporary file
stands in for /dev/videoN; the other programs are small ``sh`` processes.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.sinks import readers as readers_module
from app.sinks.readers import IN_CLOSE_NOWRITE, IN_OPEN, DeviceReaders, open_handles, parse_events

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and /proc are Linux's")


@pytest.fixture
def node(tmp_path):
    path = tmp_path / "video10"
    path.write_bytes(b"")
    return path


@pytest.fixture
def holders():
    """``hold(path)`` → a process that has opened ``path`` (it is killed at the end of the test)."""
    started = []

    def hold(path):
        proc = subprocess.Popen(["sh", "-c", 'exec 3<"$0"; echo open; exec sleep 60', str(path)],
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "open"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def watching():
    """``watching(path)`` → a DeviceReaders on ``path``, closed at the end of the test."""
    watches = []

    def watch(path):
        watches.append(DeviceReaders(path))
        return watches[-1]

    yield watch
    for w in watches:
        w.close()


def end(proc):
    proc.kill()
    proc.wait()


@linux
def test_opens_and_closes_by_this_process_after_the_watch_are_counted(node, watching):
    own = open(node, "rb")  # like pyvirtualcam's own handle: opened before the watch, never counted
    watch = watching(node)
    assert watch.poll() == 0
    f = open(node, "rb")
    assert watch.poll() == 1
    g = open(node, "rb")
    assert watch.poll() == 2
    f.close()
    g.close()
    assert watch.poll() == 0
    own.close()  # our own handle: its close must not drive the count below zero or count at all
    assert watch.poll() == 0


@linux
def test_other_processes_count_once_whether_seen_by_proc_or_by_inotify(node, watching, holders):
    watch = watching(node)
    assert watch.poll() == 0
    proc = holders(node)  # its open is both an inotify event and a /proc entry: one reader
    assert watch.poll() == 1
    end(proc)
    assert watch.poll() == 0


@linux
def test_an_app_that_opened_the_node_before_the_watch_is_found_in_proc(node, watching, holders):
    early = holders(node)
    watch = watching(node)
    assert watch.poll() == 1
    end(early)
    assert watch.poll() == 0


@linux
def test_merged_open_events_do_not_hide_a_reader(node, watching, holders):
    """Two opens in a row reach us as one inotify event; /proc still sees both apps."""
    watch = watching(node)
    first, second = holders(node), holders(node)
    assert watch.poll() == 2
    end(first)
    assert watch.poll() == 1
    end(second)
    assert watch.poll() == 0


@linux
def test_opens_by_processes_proc_cannot_show_are_counted_from_events(node, watching, monkeypatch, tmp_path):
    """A process whose file table is unreadable (another user's) is counted from its inotify events."""
    empty_proc = tmp_path / "proc"
    empty_proc.mkdir()
    monkeypatch.setattr(readers_module, "PROC", str(empty_proc))
    watch = watching(node)
    f = open(node, "rb")
    assert watch.poll() == 1
    f.close()
    assert watch.poll() == 0


def test_proc_scan_skips_processes_it_may_not_read(node, tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    for pid, fds in {"101": {"3": node, "4": tmp_path}, "102": {"7": node}, "103": {"1": node},
                     str(os.getpid()): {"5": node}, "self": {"5": node}}.items():
        (proc / pid / "fd").mkdir(parents=True)
        for fd, target in fds.items():
            (proc / pid / "fd" / fd).symlink_to(target)
    listdir = os.listdir

    def refusing(path):  # process 103 belongs to another user (a chmod would not stop root)
        if str(path).endswith(os.path.join("103", "fd")):
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(readers_module.os, "listdir", refusing)
    assert open_handles(str(node), str(proc)) == {(101, 3), (102, 7), (os.getpid(), 5)}
    assert open_handles(str(node), str(tmp_path / "no-proc")) is None


@pytest.mark.parametrize("path", [None, "OBS Virtual Camera", "/dev/video-does-not-exist"])
def test_unknown_when_the_path_is_no_device_node(path):
    assert DeviceReaders(path).poll() is None


def test_unknown_for_a_folder(tmp_path):
    assert DeviceReaders(tmp_path).poll() is None


def test_unknown_off_linux(node, monkeypatch):
    monkeypatch.setattr(readers_module.sys, "platform", "darwin")
    assert DeviceReaders(node).poll() is None


@linux
def test_unknown_without_proc(node, monkeypatch, tmp_path):
    monkeypatch.setattr(readers_module, "PROC", str(tmp_path / "no-proc"))
    assert DeviceReaders(node).poll() is None


@linux
def test_unknown_once_the_node_is_gone(node):
    watch = DeviceReaders(node)
    assert watch.poll() == 0
    node.unlink()
    assert watch.poll() is None
    assert watch.poll() is None  # and it stays unknown


@linux
def test_unknown_after_close(node):
    watch = DeviceReaders(node)
    watch.close()
    assert watch.poll() is None


def test_event_records_are_parsed_with_their_names():
    data = (readers_module.EVENT.pack(1, IN_OPEN, 0, 16) + b"name".ljust(16, b"\0")
            + readers_module.EVENT.pack(1, IN_CLOSE_NOWRITE, 0, 0))
    assert parse_events(data) == [IN_OPEN, IN_CLOSE_NOWRITE]
