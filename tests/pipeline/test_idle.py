"""The run loop pauses while no app reads the virtual camera and nothing else needs frames (app.idle).

The virtual camera is replaced by a sink whose ``readers()`` the test sets; what
the pipeline did is counted by its matting stage (called once per processed frame).
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from app import idle
from app.backgrounds import ColourBackground
from app.idle import IdleGate
from app.pipeline import Pipeline
from app.stream import Stream
from app.sinks.base import NullSink
from app.sources.base import Source
from app.timing import StageTimes
from models import registry
from models.frame import Frame
from models.matting.base import Matte, Matting
from models.matting.postprocess import MatteOptions, MattePostprocess

SIZE = (16, 8)


class CountingMatting(Matting):
    def __init__(self):
        self.frames = 0

    def matte(self, frame):
        self.frames += 1
        return Matte(np.ones(frame.rgb.shape[:2], np.float32))


class EndlessSource(Source):
    """Grey frames that get brighter, for ever; counts reads and remembers pauses."""

    def __init__(self, live=True):
        self.live = live
        self.reads = 0
        self.paused: list[bool] = []

    @property
    def size(self):
        return SIZE

    def read(self):
        self.reads += 1
        time.sleep(0.001)
        return Frame(np.full((SIZE[1], SIZE[0], 3), 10 + self.reads % 200, np.uint8), self.reads,
                     time.monotonic())

    def set_paused(self, paused):
        self.paused.append(paused)


class VirtualCameraStandIn(NullSink):
    """A real-time output whose reader count the test sets."""

    realtime = True

    def __init__(self, readers):
        super().__init__()
        self.value = readers

    def readers(self):
        return self.value


def make_pipeline(sinks):
    return Pipeline(CountingMatting(), ColourBackground((0, 0, 255)), registry.create("blend", "linear"),
                    registry.create("harmonizer", "none"),
                    MattePostprocess(MatteOptions(smoothing_s=0, refine=False)), list(sinks))


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@pytest.fixture
def quick(monkeypatch):
    """Pause at once, look for readers often, send keep-alive frames often: the test needs no long waits."""
    monkeypatch.setattr(idle, "PAUSE_AFTER_S", 0.0)
    monkeypatch.setattr(idle, "CHECK_S", 0.005)
    monkeypatch.setattr(idle, "KEEPALIVE_FPS", 200.0)


class Running:
    """A stream's loop on a thread, stopped and joined at the end."""

    def __init__(self, source, pipeline, **kw):
        self.stream = Stream(source, pipeline)
        self.errors = []
        self.thread = threading.Thread(target=self._run, kwargs=kw)
        self.thread.start()

    def _run(self, **kw):
        try:
            self.stream.run(**kw)
        except Exception as exc:  # pragma: no cover - reported by close()
            self.errors.append(exc)

    def close(self):
        self.stream.stop()
        self.thread.join(10)
        assert not self.thread.is_alive() and not self.errors


def test_nothing_is_processed_while_nobody_reads_and_work_resumes_for_a_reader(quick):
    vcam, source = VirtualCameraStandIn(readers=1), EndlessSource()
    p = make_pipeline([vcam])
    run = Running(source, p)
    try:
        wait_until(lambda: p.matting.frames >= 3)
        vcam.value = 0  # the call app closed the camera
        wait_until(lambda: p.times.paused)
        processed, reads, sent = p.matting.frames, source.reads, vcam.count
        wait_until(lambda: vcam.count >= sent + 5)  # keep-alive frames flow…
        assert p.matting.frames == processed and source.reads == reads  # …but nothing is read or processed
        assert source.paused == [True]
        assert vcam.last.mean() > 0  # the last picture, not black

        vcam.value = 1  # an app opens the camera
        wait_until(lambda: p.matting.frames > processed + 2)
        assert not p.times.paused and source.paused == [True, False]
    finally:
        run.close()
    p.close()


def test_a_stream_nobody_reads_from_the_start_sends_black_and_processes_nothing(quick):
    vcam, source = VirtualCameraStandIn(readers=0), EndlessSource(live=False)
    p = make_pipeline([vcam])
    run = Running(source, p)
    try:
        wait_until(lambda: vcam.count >= 3)
        assert p.matting.frames == 0 and source.reads == 0
        assert vcam.last.shape == (SIZE[1], SIZE[0], 3) and not vcam.last.any()
        vcam.value = 2
        wait_until(lambda: p.matting.frames >= 2)
    finally:
        run.close()
    p.close()


def test_always_on_keeps_processing_without_readers(quick):
    p = make_pipeline([VirtualCameraStandIn(readers=0)])
    stream = Stream(EndlessSource(), p)
    guard = threading.Timer(10, stream.stop)  # a paused stream would otherwise wait for ever
    guard.start()
    count = stream.run(max_frames=5, always_on=True)
    guard.cancel()
    assert count == 5 and p.matting.frames == 5 and not p.times.paused
    p.close()


def test_always_on_is_asked_before_each_frame(quick):
    vcam, keep = VirtualCameraStandIn(readers=0), threading.Event()
    p = make_pipeline([vcam])
    run = Running(EndlessSource(), p, always_on=keep.is_set)
    try:
        wait_until(lambda: p.times.paused)
        assert p.matting.frames == 0
        keep.set()  # e.g. the window's checkbox, or the user back in the window
        wait_until(lambda: p.matting.frames >= 3)
    finally:
        run.close()
    p.close()


@pytest.mark.parametrize("other", [NullSink, lambda: VirtualCameraStandIn(readers=None)],
                         ids=["a file or preview", "a camera that cannot count"])
def test_an_output_that_needs_frames_keeps_the_stream_working(quick, other):
    p = make_pipeline([VirtualCameraStandIn(readers=0), other()])
    stream = Stream(EndlessSource(), p)
    guard = threading.Timer(10, stream.stop)  # a paused stream would otherwise wait for ever
    guard.start()
    count = stream.run(max_frames=5)
    guard.cancel()
    assert count == 5 and p.matting.frames == 5
    p.close()


def test_a_pause_waits_for_readers_to_stay_away(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(idle.time, "monotonic", lambda: clock[0])
    vcam = VirtualCameraStandIn(readers=0)
    p = make_pipeline([vcam])
    gate = IdleGate()

    def at(t):
        clock[0] = 100.0 + t
        return gate.should_pause(p)

    assert not at(0.0) and not at(idle.PAUSE_AFTER_S - 0.01) and at(idle.PAUSE_AFTER_S)
    vcam.value = 1  # a browser that closes and reopens the camera when a call starts
    assert not at(idle.PAUSE_AFTER_S + 0.1)
    vcam.value = 0
    assert not at(idle.PAUSE_AFTER_S + 0.2) and not at(2 * idle.PAUSE_AFTER_S + 0.1)
    assert at(2 * idle.PAUSE_AFTER_S + 0.2)
    assert not IdleGate(always_on=True).should_pause(p) and not gate.should_pause(make_pipeline([]))
    p.close()


def test_paused_time_is_not_frame_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("app.timing.time.perf_counter", lambda: clock[0])
    times = StageTimes()
    for t in (0.0, 0.1, 0.2):
        clock[0] = t
        times.frame_finished(5.0)
    times.pause()
    clock[0] = 60.2
    assert times.paused and times.fps() == 0.0
    times.resume()
    for t in (60.3, 60.4):
        clock[0] = t
        times.frame_finished(5.0)
    assert not times.paused and times.fps() == pytest.approx(10.0)


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers are counted on Linux")


def run_into_virtual_camera(node, *extra):
    from app.cli import main

    return main(["run", "--source", "sample", "--resolution", "64x36", "--harmonizer", "none", "--frames", "3",
                 "--output", "vcam", "--vcam-backend", "harmonicam-test", "--vcam-device", str(node), *extra])


@pytest.fixture
def node(tmp_path):
    """A file standing in for the loopback device node (inotify and /proc treat them alike)."""
    path = tmp_path / "video10"
    path.write_bytes(b"")
    return path


class LateReader(threading.Thread):
    """Opens ``node`` (an app joining) once ``ready()`` or after 10 s, and holds it until ``done``."""

    def __init__(self, node, ready):
        super().__init__(daemon=True)
        self.node, self.ready, self.done, self.seen = node, ready, threading.Event(), None

    def run(self):
        deadline = time.monotonic() + 10
        while not self.ready() and time.monotonic() < deadline and not self.done.is_set():
            time.sleep(0.005)
        self.seen = self.ready()
        if self.done.is_set():
            return
        with open(self.node, "rb"):
            self.done.wait(30)


@linux
def test_harmonicam_run_waits_for_an_app_to_open_the_camera(isolated_logging, vcam_backends, quick, node):
    def only_black_sent():
        cams = vcam_backends.instances
        return bool(cams) and cams[-1].count >= 3 and not cams[-1].first.any() and not cams[-1].last.any()

    reader = LateReader(node, only_black_sent)
    reader.start()
    try:
        assert run_into_virtual_camera(node) == 0
    finally:
        reader.done.set()
        reader.join()
    assert reader.seen  # nothing was processed before the app came: only keep-alive frames
    assert vcam_backends.instances[-1].last.any()  # then the three frames were


@linux
def test_harmonicam_run_always_on_works_without_readers(isolated_logging, vcam_backends, quick, node):
    reader = LateReader(node, lambda: False)  # only a guard: opens the camera after 10 s if the run paused
    reader.start()
    try:
        assert run_into_virtual_camera(node, "--always-on") == 0
    finally:
        reader.done.set()
        reader.join()
    camera = vcam_backends.instances[-1]
    assert camera.first.any() and camera.count == 3  # every frame sent was a processed one
