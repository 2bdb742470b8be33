"""SIGTERM, SIGHUP and Ctrl+C stop a run or the window cleanly: outputs closed, no partial file, 128 + signal."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.signals import Terminated, exit_code, handle_signals, terminate_on_signals
from app.sinks.video_file import VideoFileSink

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(autouse=True)
def isolated_log_folder(tmp_path, monkeypatch):
    """The runs started here (and main) log into the test's folder, never into the real home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def hangup_not_ignored():
    """A suite started under ``nohup`` inherits SIGHUP ignored, and a run rightly keeps it so
    (``test_an_ignored_signal_stays_ignored``); the tests here send SIGHUP, to themselves and to the runs
    they start, so they start from its default."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_sigterm_raises_terminated_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info:
        with terminate_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143
    assert str(info.value) == "stopped by SIGTERM"
    assert not isinstance(info.value, Exception)  # `except Exception` never swallows it
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_signal_does_not_interrupt_the_clean_up():
    cleaned = []
    with pytest.raises(Terminated) as info:
        with terminate_on_signals():
            try:
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(5)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # ignored: the clean-up finishes
                time.sleep(0.05)
                cleaned.append(True)
    assert info.value.signum == signal.SIGHUP and info.value.exit_code == 129 and cleaned == [True]


def test_an_ignored_signal_stays_ignored(monkeypatch):
    """``nohup`` ignores SIGHUP on purpose; a run under it must survive the terminal closing."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with handle_signals(lambda signum: None, (signal.SIGHUP, signal.SIGTERM)) as taken:
            assert taken == (signal.SIGTERM,)
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_exit_codes():
    assert (exit_code(signal.SIGINT), exit_code(signal.SIGTERM), exit_code(signal.SIGHUP)) == (130, 143, 129)


# --- the video file sink removes its temporary file on every interrupted path --------------------------------

def test_interrupted_while_opening_leaves_no_partial(tmp_path, monkeypatch):
    def interrupted(*args):
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(VideoFileSink, "_open_writer", interrupted)  # H.264 or OpenCV's fourcc alike
    sink = VideoFileSink(tmp_path / "out.mp4")
    with pytest.raises(Terminated):
        sink.open((64, 48), 30)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_while_closing_leaves_no_partial(tmp_path):
    sink = VideoFileSink(tmp_path / "out.mp4")
    sink.open((64, 48), 30)
    sink.send(np.zeros((48, 64, 3), np.uint8))
    writer = sink._writer

    class Interrupted:
        def release(self):
            writer.release()
            raise Terminated(signal.SIGTERM)

    sink._writer = Interrupted()
    with pytest.raises(Terminated):
        sink.close(success=True)
    assert list(tmp_path.iterdir()) == []


def test_opening_twice_keeps_one_temporary_file(tmp_path):
    sink = VideoFileSink(tmp_path / "out.mp4")
    sink.open((64, 48), 30)
    sink.open((64, 48), 30)
    assert len(list(tmp_path.iterdir())) == 1
    sink.close(success=False)
    assert list(tmp_path.iterdir()) == []


# --- a real run, stopped by a real signal --------------------------------------------------------------------

def start(args: list[str], cwd: Path, stderr, env: dict | None = None) -> subprocess.Popen:
    """``python -m app.cli ARGS`` as a user starts it; SIGINT is reset to its default even where the test
    runner was started with it ignored (a background job of a script), as in an interactive terminal."""
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the process ended before it was signalled"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def writing(folder: Path) -> bool:
    """The run has started writing its output (its partial file exists)."""
    return any(p.name.endswith(".partial.mp4") for p in folder.iterdir())


def signal_when(proc: subprocess.Popen, ready, signum: int, code: int, err: Path, settle: float = 0.0) -> None:
    """Send ``signum`` once ``ready()`` holds (and ``settle`` seconds more); the process must exit with ``code``."""
    try:
        wait_for(ready, proc)
        time.sleep(settle)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signalled_run_leaves_no_file(tmp_path, signum, code, sample_clip):
    out = tmp_path / "out"
    out.mkdir()
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = start(["run", "--source", "sample", "--harmonizer", "none", "--output", "OUT.mp4", "--loop"],
                     cwd=out, stderr=stderr)
        signal_when(proc, lambda: writing(out), signum, code, err, settle=0.3)
    assert list(out.iterdir()) == []  # neither OUT.mp4 nor the partial file
    assert "Traceback" not in err.read_text()


# --- the window ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_closes_the_window_and_quits(qtbot, qapp, signum):
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QWidget

    from app.gui.launch import close_on_signals

    # A shell starts a background job with SIGINT ignored, and a signal ignored at the start stays ignored
    # (handle_signals, as nohup wants): the test gives itself the handler an interactive start has.
    inherited = signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    before = signal.getsignal(signum)
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    # Timers of our own, stopped at the end: a pending one-shot would fire in the next test's event loop.
    kill, guard = QTimer(), QTimer()
    for timer, action, ms in ((kill, lambda: os.kill(os.getpid(), signum), 50), (guard, qapp.quit, 10_000)):
        timer.setSingleShot(True)
        timer.timeout.connect(action)
        timer.start(ms)  # the guard never lets the test run hang
    started = time.monotonic()
    try:
        with close_on_signals(qapp, window.close, wake_ms=20) as received:
            qapp.exec()
        after = signal.getsignal(signum)
    finally:
        kill.stop()
        guard.stop()
        signal.signal(signum, inherited)
    assert received == [signum] and time.monotonic() - started < 5
    assert not window.isVisible()
    assert after == before
    # The quit that closing the window queued is gone with the loop: the next test's loops still run.
    qapp.processEvents()
    loop, fired = QEventLoop(), []
    QTimer.singleShot(20, lambda: (fired.append(True), loop.quit()))
    loop.exec()
    assert fired


def test_ctrl_c_in_the_window_exits_130_without_traceback(tmp_path):
    """The reviewer's case: Ctrl+C in a terminal that started the window (it aborted with exit 134)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = start(["gui", "--debug"], cwd=tmp_path, stderr=stderr, env=env)
        signal_when(proc, lambda: "window open" in err.read_text(), signal.SIGINT, 130, err)
    text = err.read_text()
    assert "window closed by SIGINT" in text and "Traceback" not in text and "KeyboardInterrupt" not in text


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_closes_the_preview_window_without_abort(tmp_path, signum, code):
    """``run --preview`` runs Qt's loop: an exception raised in it would abort (exit 134)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = start(["run", "--source", "sample", "--harmonizer", "none", "--output", "OUT.mp4", "--loop",
                      "--preview"], cwd=tmp_path, stderr=stderr, env=env)
        signal_when(proc, lambda: writing(tmp_path), signum, code, err, settle=0.3)
    text = err.read_text()
    assert f"preview closed by {signal.Signals(signum).name}" in text and "Traceback" not in text
    assert not any(".partial" in p.name for p in tmp_path.iterdir())


# --- a source whose read blocks: a camera unplugged during the run -------------------------------------------

#: ``harmonicam run`` on camera 0, where camera 0 is a device that delivers a second of frames and is then
#: unplugged (reads fail, it never opens again): ``CameraSource.read`` then waits for a frame that never comes.
UNPLUGGED_CAMERA_RUN = r"""
import sys, time
import cv2, numpy as np

class UnpluggedCamera:
    opened = 0

    def __init__(self, device):
        UnpluggedCamera.opened += 1
        self.present, self.frames = UnpluggedCamera.opened == 1, 30

    def isOpened(self):
        return self.present

    def set(self, *args):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 160, cv2.CAP_PROP_FRAME_HEIGHT: 90}.get(prop, 0)

    def read(self):
        time.sleep(1 / 30)
        self.frames -= 1
        return (True, np.full((90, 160, 3), 120, np.uint8)) if self.frames >= 0 else (False, None)

    def release(self):
        pass

cv2.VideoCapture = UnpluggedCamera  # what CameraSource opens devices with
from app.cli import main
code = main(sys.argv[1:])
print(f"returned at {time.time()}", file=sys.stderr, flush=True)
sys.exit(code)
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_camera_read_blocks_ends_the_run_at_once(tmp_path, signum, code):
    """The source is interrupted before anything waits for its read: one signal ends the run within 2 s
    (until the command returns; the interpreter's own exit, torch's teardown, follows), the output discarded."""
    out, err = tmp_path / "out", tmp_path / "stderr.txt"
    out.mkdir()
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", UNPLUGGED_CAMERA_RUN, "run", "--source", "0",
                                 "--resolution", "160x90", "--harmonizer", "none", "--output", "OUT.mp4"],
                                cwd=out, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            wait_for(lambda: "stopped delivering frames" in err.read_text() and writing(out), proc)
            time.sleep(0.5)  # the run now waits in the camera's read
            sent = time.time()
            proc.send_signal(signum)
            returned = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:  # a run that hangs: the test fails below
                proc.kill()
                proc.wait()
    text = err.read_text()
    assert returned == code and "returned at" in text, text
    took = float(text.split("returned at ")[1].split()[0]) - sent
    assert took < 2.0, (took, text)
    assert list(out.iterdir()) == []  # neither OUT.mp4 nor its partial file
    assert "Traceback" not in text
