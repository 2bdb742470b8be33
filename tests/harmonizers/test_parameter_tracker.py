"""Slow predictions, smoothed parameters: rate-limited, EMA'd, never blocking live streams."""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from models.harmonizers import parameter_tracker
from models.harmonizers.parameter_tracker import ParameterTracker
from models.ops.threads import BACKGROUND_NICE


def run_file_stream(fps: float, seconds: float, tau: float = 1.0) -> np.ndarray:
    """A step from 0 to 1 in the predicted parameters, seen through a file stream at ``fps``."""
    calls = []

    def predict(x):
        calls.append(x)
        return np.array([x], np.float32)

    tracker = ParameterTracker(predict, rate_hz=10, tau_s=tau, live=False)
    for i in range(round(fps * seconds) + 1):
        t = i / fps
        if tracker.due(t):
            tracker.submit(0.0 if t == 0 else 1.0, t)
    return tracker.current(), len(calls)


def test_file_streams_predict_at_the_rate_and_smooth_by_time():
    (v25, n25), (v50, n50) = run_file_stream(25, 2.0), run_file_stream(50, 2.0)
    assert 19 <= n25 <= 21 and 19 <= n50 <= 21  # 10 Hz over 2 s, whatever the frame rate
    assert v25[0] == pytest.approx(v50[0], abs=0.02)
    # τ = 1 s step response after 2 s (the last prediction may fall up to one period early)
    assert v25[0] == pytest.approx(1 - np.exp(-2.0), abs=0.02)


def test_live_prediction_never_blocks_the_caller():
    release = threading.Event()

    def slow_predict(x):
        release.wait(5)
        return np.array([x], np.float32)

    tracker = ParameterTracker(slow_predict, rate_hz=1000, tau_s=0.0, live=True)
    t0 = time.perf_counter()
    tracker.submit(1.0, 0.0)
    tracker.submit(2.0, 0.01)  # replaces the pending request; the newest wins
    assert time.perf_counter() - t0 < 0.5
    assert tracker.current() is None  # nothing predicted yet, and no waiting for it
    release.set()
    deadline = time.monotonic() + 5
    while tracker.current() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tracker.current()[0] in (1.0, 2.0)
    tracker.close()


def test_a_failing_live_prediction_is_retried_with_back_off_reported_once_and_recovers(monkeypatch, caplog):
    monkeypatch.setattr(parameter_tracker, "RETRY_S", 0.02, raising=False)
    attempts = []

    def flaky(x):
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            raise ValueError("driver hiccup")
        return np.array([x], np.float32)

    tracker = ParameterTracker(flaky, rate_hz=1000, tau_s=0.0, live=True)
    t, deadline = 0.0, time.monotonic() + 10
    while (len(attempts) < 4 or tracker.current() is None) and time.monotonic() < deadline:
        tracker.submit(1.0, t)  # a frame every 2 ms asks for a prediction
        t += 0.01
        time.sleep(0.002)
    assert tracker.current()[0] == 1.0 and tracker.error is None  # harmonization resumed
    waits = np.diff(attempts[:4])
    assert waits[0] >= 0.02 and waits[1] >= 0.04 and waits[2] >= 0.08  # the retries back off
    reports = [r for r in caplog.records if "prediction failed" in r.getMessage()]
    assert len(reports) == 1 and "driver hiccup" in reports[0].getMessage()
    tracker.close()
    assert not [th for th in threading.enumerate() if th.name == "harmonizer-args"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_live_predictions_run_below_the_frame_loop_s_priority():
    seen = []

    def predict(inputs):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.zeros(6, np.float32)

    tracker = ParameterTracker(predict, live=True)
    try:
        tracker.submit(None, 0.0)
        for _ in range(200):
            if seen:
                break
            time.sleep(0.01)
    finally:
        tracker.close()
    loop = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, loop + BACKGROUND_NICE)]
