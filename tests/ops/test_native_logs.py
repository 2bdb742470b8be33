"""The quiet around native start-up chatter: counted across threads, and never silencing Python's own output."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from models.ops.native_logs import quiet_native_logs


def test_overlapping_quiet_windows_of_two_threads_give_standard_error_back(capfd):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with quiet_native_logs():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with quiet_native_logs():
            second_in.set()
            first_out.wait(5)  # the first window closes while this one is open
            os.write(2, b"native chatter\n")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    os.write(2, b"after the quiet\n")
    err = capfd.readouterr().err
    assert "native chatter" not in err
    assert "after the quiet" in err


CHILD = r"""
import os, sys, threading
from models.ops.native_logs import quiet_native_logs
with quiet_native_logs():
    os.write(2, b"native chatter\n")
    writer = threading.Thread(target=lambda: print("the camera stopped delivering frames", file=sys.stderr))
    writer.start()
    writer.join(10)
print("after the quiet", file=sys.stderr)
"""


def test_python_output_of_another_thread_reaches_standard_error_during_the_quiet():
    # A process of its own: its sys.stderr writes to file descriptor 2, as the app's does.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert "native chatter" not in done.stderr
    assert "the camera stopped delivering frames" in done.stderr
    assert "after the quiet" in done.stderr
