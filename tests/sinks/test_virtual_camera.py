"""The virtual camera through the real pyvirtualcam.Camera on a registered test backend."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from pyvirtualcam.util import decode_fourcc

from app.errors import UsageError
from app.stream import Pacer
from app.sinks.virtual_camera import FIXES, VirtualCameraError, VirtualCameraSink, diagnose


def test_frames_reach_the_camera_unchanged(vcam_backends):
    sink = VirtualCameraSink(backend="harmonicam-test")
    sink.open((1280, 720), 30)
    frames = [np.full((720, 1280, 3), i, np.uint8) for i in range(3)]
    frames[0][0, 0] = (255, 0, 0)  # RGB order is kept: red stays in channel 0
    for f in frames:
        sink.send(f)
    backend = vcam_backends.instances[-1]
    assert (backend.width, backend.height, backend.fps) == (1280, 720, 30)
    assert decode_fourcc(backend.fourcc) == "raw "  # pyvirtualcam's RGB format
    assert sink.frames_sent == 3 and backend.count == 3
    got = backend.first.reshape(720, 1280, 3)
    assert tuple(got[0, 0]) == (255, 0, 0) and got[0, 1, 0] == 0  # not mirrored either
    assert "harmonicam-test" in sink.description
    sink.close()
    assert backend.closed


def test_pacing_gives_the_requested_rate(vcam_backends):
    sink = VirtualCameraSink(backend="harmonicam-test")
    sink.open((64, 48), 30)
    pacer = Pacer(30)
    frame = np.zeros((48, 64, 3), np.uint8)
    t0 = time.perf_counter()
    for _ in range(16):
        pacer.wait()
        sink.send(frame)
    elapsed = time.perf_counter() - t0
    assert elapsed == pytest.approx(15 / 30, abs=0.08)
    assert sink.current_fps == pytest.approx(30, abs=4)
    sink.close()


def test_odd_width_is_refused(vcam_backends):
    with pytest.raises(UsageError, match="even width"):
        VirtualCameraSink(backend="harmonicam-test").open((641, 480), 30)


def test_no_driver_gives_the_fix_for_this_os(vcam_backends):
    with pytest.raises(VirtualCameraError) as info:
        VirtualCameraSink(backend="harmonicam-nodriver").open((1280, 720), 30)
    msg = str(info.value)
    assert "could not start" in msg and "No v4l2 loopback device" in msg
    assert info.value.fix in msg


def test_unknown_backend_name_is_a_usage_error(vcam_backends):
    with pytest.raises(UsageError, match="not available here"):
        VirtualCameraSink(backend="obs")


@pytest.mark.parametrize("system, detail, expect", [
    ("Linux", "No v4l2 loopback device found", "exclusive_caps=1"),
    ("Linux", "Could not access /dev/video3 due to missing permissions", "video group"),
    ("Windows", "OBS Virtual Camera device not found! Did you install OBS?", "Start Virtual Camera"),
    ("Darwin", "OBS Virtual Camera is not installed in your system", "System Settings"),
    ("Darwin", "Multiple cameras are not supported by this backend.", "already sending"),
])
def test_doctor_names_the_fix(system, detail, expect):
    assert expect in diagnose(detail, system)
    assert set(FIXES) == {"Linux", "Windows", "Darwin"}


def test_a_device_that_goes_away_is_reopened_and_frames_flow_again(vcam_backends, monkeypatch):
    statuses = []
    sink = VirtualCameraSink(backend="harmonicam-test", reconnect_s=0.05, on_status=statuses.append)
    sink.open((64, 48), 30)
    first = vcam_backends.instances[-1]

    def unplugged(frame):
        raise RuntimeError("error writing frame: No such device")

    monkeypatch.setattr(first, "send", unplugged)
    frame = np.zeros((48, 64, 3), np.uint8)
    sink.send(frame)  # the device vanishes: reported, no exception
    sink.send(frame)  # dropped while waiting to retry
    assert len(vcam_backends.instances) == 1 and "re-opening it every 0.05 s" in statuses[0]
    time.sleep(0.06)
    sink.send(frame)
    second = vcam_backends.instances[-1]
    assert second is not first and second.count == 1 and "is back" in statuses[-1]
    sink.close()
    assert second.closed


def test_without_reconnect_a_vanished_device_raises(vcam_backends, monkeypatch):
    sink = VirtualCameraSink(backend="harmonicam-test")
    sink.open((64, 48), 30)
    monkeypatch.setattr(vcam_backends.instances[-1], "send", lambda f: (_ for _ in ()).throw(RuntimeError("gone")))
    with pytest.raises(RuntimeError, match="gone"):
        sink.send(np.zeros((48, 64, 3), np.uint8))


def test_a_device_taken_by_another_program_is_retried_until_free(vcam_backends, monkeypatch):
    import pyvirtualcam.camera

    statuses = []
    sink = VirtualCameraSink(backend="harmonicam-test", reconnect_s=0.02, on_status=statuses.append)
    sink.open((64, 48), 30)
    frame = np.zeros((48, 64, 3), np.uint8)
    monkeypatch.setattr(vcam_backends.instances[-1], "send",
                        lambda f: (_ for _ in ()).throw(RuntimeError("device went away")))
    sink.send(frame)

    class Taken:
        def __init__(self, **kw):
            raise RuntimeError("device /dev/video-test is already in use")

    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "harmonicam-test", Taken)
    for _ in range(3):  # while another program holds it: no exception, frames dropped
        time.sleep(0.025)
        sink.send(frame)
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "harmonicam-test", vcam_backends)
    time.sleep(0.025)
    sink.send(frame)
    assert vcam_backends.instances[-1].count == 1 and "is back" in statuses[-1]
    sink.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers are counted on Linux")
def test_readers_are_the_apps_that_open_the_device_after_us(vcam_backends, tmp_path, monkeypatch):
    node = tmp_path / "video10"  # a file stands in for the loopback node: inotify and /proc treat them alike
    node.write_bytes(b"")
    ours = open(node, "rb")  # what pyvirtualcam holds (the test backend opens nothing itself)
    sink = VirtualCameraSink(backend="harmonicam-test", device=str(node), reconnect_s=0.05,
                             on_status=lambda text: None)
    sink.open((64, 48), 30)
    assert sink.readers() == 0
    app = open(node, "rb")  # a call app opens the camera
    assert sink.readers() == 1
    app.close()
    assert sink.readers() == 0

    monkeypatch.setattr(vcam_backends.instances[-1], "send", lambda f: (_ for _ in ()).throw(RuntimeError("gone")))
    sink.send(np.zeros((48, 64, 3), np.uint8))
    assert sink.readers() is None  # while the device is lost nobody can tell: keep working
    time.sleep(0.06)
    sink.send(np.zeros((48, 64, 3), np.uint8))  # re-opened: counting again
    assert sink.readers() == 0
    sink.close()
    ours.close()
    assert sink.readers() is None


def test_readers_are_unknown_where_the_device_is_no_node(vcam_backends):
    sink = VirtualCameraSink(backend="harmonicam-test")  # the test backend's "/dev/video-test" does not exist
    sink.open((64, 48), 30)
    assert sink.readers() is None
    sink.close()
