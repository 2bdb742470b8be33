"""LowPriorityJob: one job in flight on a named, lower-priority worker, with its context."""
from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from models.ops.threads import LowPriorityJob


def whoami() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_job_runs_on_its_named_worker_and_is_taken_up_with_its_context():
    job = LowPriorityJob("probe")
    try:
        assert not job.running and not job.done()
        job.submit(whoami, context=("frame", 7))
        assert job.running
        (name, _), context = job.take()
        assert name == "probe_0" and context == ("frame", 7)
        assert not job.running and not job.done()
    finally:
        job.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value on Linux only")
def test_the_worker_runs_below_the_callers_priority():
    job = LowPriorityJob("probe")
    try:
        job.submit(whoami)
        (_, worker_nice), _ = job.take()
        assert worker_nice > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        job.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value on Linux only")
def test_a_model_made_on_the_worker_runs_its_own_threads_below_the_callers_priority():
    """What ``make`` builds is built on the worker: a thread the model starts (as MediaPipe's graphs do) starts at
    the worker's lower priority, not at the caller's."""
    class ThreadedModel:
        def __init__(self) -> None:
            self.made_on = threading.current_thread().name
            self.nice: list[int] = []
            own = threading.Thread(target=lambda: self.nice.append(whoami()[1]))
            own.start()
            own.join()

    job = LowPriorityJob("probe")
    try:
        model = job.make(ThreadedModel)
        assert model.made_on == "probe_0"
        assert model.nice[0] > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        job.close()


def test_done_says_when_take_would_not_wait():
    gate = threading.Event()
    job = LowPriorityJob("probe")
    try:
        job.submit(gate.wait, 5)
        assert job.running and not job.done()
        gate.set()
        assert job.take() == (True, None)
    finally:
        job.close()


def fail() -> None:
    raise RuntimeError("the model failed")


def test_take_raises_the_jobs_error_and_settle_forgets_it():
    job = LowPriorityJob("probe")
    try:
        job.submit(fail)
        with pytest.raises(RuntimeError, match="the model failed"):
            job.take()
        job.submit(fail)
        job.settle()  # an answer nobody takes up: no error
        assert not job.running
    finally:
        job.close()


def test_close_stops_its_own_worker_but_not_a_given_executor():
    given = ThreadPoolExecutor(1)
    job = LowPriorityJob("probe", given)
    job.submit(whoami)
    job.close()
    assert not job.running
    assert given.submit(lambda: 1).result() == 1  # still usable: the caller owns it
    given.shutdown()
    own = LowPriorityJob("probe")
    own.submit(whoami)
    own.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("probe_")]
