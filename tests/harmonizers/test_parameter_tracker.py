"""Slow predictions, smoothed parameters: rate-limited, EMA'd, never blocking live streams."""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

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


def test_worker_errors_surface_on_the_pipeline_thread():
    def broken(x):
        raise ValueError("bad input")

    tracker = ParameterTracker(broken, live=True)
    tracker.submit(1, 0.0)
    deadline = time.monotonic() + 5
    while tracker.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="bad input"):
        tracker.current()
    tracker.close()


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
