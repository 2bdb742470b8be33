"""The default matting: the selfie model alone close to the camera, joined by the pose model while a whole
body is in view."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.imaging import cover_fit
from models import registry
from models.matting.mediapipe_auto import (BODY_LEAVE_S, BODY_PROBE_S, BODY_RETRY_S, HIPS_VISIBLE, PERSON_SHARE,
                                          BodyWatch)
from models.frame import Frame
from models.matting.mediapipe_body import PoseGraph, hips_visibility


def test_the_pose_model_looks_for_a_body_once_per_probe_interval():
    watch, looks = BodyWatch(), []
    for t in np.arange(0, 3.01, 0.1):
        if watch.probe_due(t):
            looks.append(round(float(t), 1))
            watch.probed(t, 0.0)  # no body
    assert looks == [0.0, BODY_PROBE_S, 2 * BODY_PROBE_S, 3 * BODY_PROBE_S] and not watch.joined


def test_a_look_that_missed_the_person_is_repeated_sooner():
    """No body while the selfie model sees a person is the detector's miss: looked at again after BODY_RETRY_S,
    and at the probe interval again once a look finds a body, even one without hips (a close-up)."""
    eps = 1e-6
    watch = BodyWatch()
    watch.probed(0.0, 0.0, missed=True)
    assert BODY_RETRY_S < BODY_PROBE_S
    assert not watch.probe_due(BODY_RETRY_S - eps) and watch.probe_due(BODY_RETRY_S + eps)
    watch.probed(BODY_RETRY_S, 0.3)  # a body without hips
    assert not watch.probe_due(BODY_RETRY_S + BODY_PROBE_S - eps)
    assert watch.probe_due(BODY_RETRY_S + BODY_PROBE_S + eps) and not watch.joined


def test_a_miss_that_lasts_is_looked_at_less_and_less_often():
    """The head out of view for a while: looks after 0.2, 0.4, 0.8 s, then once per probe interval."""
    watch, looks = BodyWatch(), []
    for t in np.arange(0, 5.001, 0.05):
        if watch.probe_due(t):
            looks.append(round(float(t), 2))
            watch.probed(t, 0.0, missed=True)
    gaps = np.diff(looks).round(2).tolist()
    assert gaps[:3] == [BODY_RETRY_S, 2 * BODY_RETRY_S, 4 * BODY_RETRY_S]
    assert set(gaps[3:]) == {BODY_PROBE_S}


def test_a_person_counts_as_seen_from_the_previous_answer():
    auto = registry.create("matting", "mediapipe-auto")
    try:
        assert auto._person_seen()  # a stream's first frame: assumed
        answer = np.zeros((360, 640), np.float32)
        auto._last = answer
        assert not auto._person_seen()  # an empty room: no quicker looks
        answer.flat[:int(np.ceil(PERSON_SHARE * answer.size))] = 0.9
        assert auto._person_seen()
        auto.reset()
        assert auto._person_seen()
    finally:
        auto.close()


def test_visible_hips_join_the_pose_model_until_they_are_out_of_view_long_enough():
    watch = BodyWatch()
    watch.probed(5.0, HIPS_VISIBLE)
    assert watch.joined and not watch.probe_due(5.5)  # no looks while joined: the pose model runs anyway
    assert watch.seen(5.5, 0.2)  # bending for a moment
    assert watch.seen(4.9 + BODY_LEAVE_S, 0.0)
    assert watch.seen(5.0 + BODY_LEAVE_S, 1.0)  # back in view: the clock restarts
    assert watch.seen(4.9 + 2 * BODY_LEAVE_S, 0.0)
    assert not watch.seen(5.1 + 2 * BODY_LEAVE_S, 0.0)  # gone
    assert not watch.joined and watch.probe_due(5.2 + 2 * BODY_LEAVE_S)


def test_a_clock_that_goes_back_starts_over():
    """A rewound file or a new stream with its own clock: looked at again, and no stale joining."""
    watch = BodyWatch()
    watch.probed(10.0, 0.0)
    assert watch.probe_due(2.0)
    watch.probed(2.0, 1.0)
    assert not watch.seen(1.0, 0.0)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_portraits_show_no_hips(photo, request):
    """Upper-body portraits, the framing of a call: the pose model finds the person but not the hips, so the
    selfie model runs alone."""
    pose = PoseGraph(video=False, segmentation=False)
    try:
        result = pose.process(cover_fit(request.getfixturevalue(photo), (640, 480)))
    finally:
        pose.close()
    assert result.pose_landmarks is not None and hips_visibility(result) < HIPS_VISIBLE


def test_close_to_the_camera_it_is_the_selfie_model_exactly(sample_clip):
    """The sample clip (a portrait in motion) over 1.5 s: the answers are the selfie model's, bit for bit."""
    from app.sources import open_source

    auto, selfie = registry.create("matting", "mediapipe-auto"), registry.create("matting", "mediapipe")
    source = open_source(str(sample_clip), (640, 360))
    try:
        for _ in range(45):
            frame = source.read()
            assert np.array_equal(auto.matte(frame).alpha, selfie.matte(frame).alpha)
        assert auto.watch.probed_at is not None and not auto.watch.joined
    finally:
        source.close()
        auto.close()
        selfie.close()


def test_it_is_the_app_default():
    from app.assemble import StageChoice

    assert StageChoice().matting == "mediapipe-auto" and "mediapipe-auto" in registry.usable("matting")


def test_live_the_looks_after_the_first_run_on_a_worker_as_of_the_frame_they_looked_at(monkeypatch):
    """An empty room, live: the look at the stream's start in place (it misses: a person is assumed at the start),
    the retry 0.2 s later and the look a second after that on the worker; the last is counted from the frame
    it looked at (1.2 s), whenever its answer is taken up."""
    auto = registry.create("matting", "mediapipe-auto")
    try:
        auto.live = True
        looks, made, real_process, real_init = [], [], PoseGraph.process, PoseGraph.__init__

        def process(self, rgb):
            looks.append((threading.current_thread().name, self is auto._probe))
            return real_process(self, rgb)

        def init(self, *args, **kwargs):
            made.append(threading.current_thread().name)
            real_init(self, *args, **kwargs)

        monkeypatch.setattr(PoseGraph, "process", process)
        monkeypatch.setattr(PoseGraph, "__init__", init)
        empty = np.zeros((36, 64, 3), np.uint8)
        for i in range(45):  # 1.5 s at 30 fps
            auto.coarse(Frame(empty, i, i / 30))
        while auto._looks.running and not auto._looks.done():  # the last look ends on the worker
            time.sleep(0.01)
        auto.coarse(Frame(empty, 45, 1.5))  # takes the answer up
        here = threading.current_thread().name
        # The worker's looks use a graph made on the worker: its own threads run below the frame loop too.
        assert looks[0] == (here, True) and looks[1:] == [("body-probe_0", False)] * 2
        assert made == ["body-probe_0"]
        assert auto.watch.probed_at == pytest.approx(1.2, abs=0.04) and not auto.watch.joined
    finally:
        auto.close()
