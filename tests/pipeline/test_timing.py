"""Stage times (app.timing): wall clock on the host, CUDA events for the device stages on a GPU."""
from __future__ import annotations

import time

import pytest
import torch

from app.timing import StageTimes

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def timed_by_the_wall_clock(times: StageTimes, stage: str) -> bool:
    """Whether a 10 ms sleep measured as ``stage`` comes out as 10 ms (events would see no GPU work in it)."""
    with times.measure(stage):
        time.sleep(0.01)
    return not times.events and times.summary()[stage]["median"] >= 9


def test_on_the_cpu_every_stage_is_timed_by_the_wall_clock():
    assert timed_by_the_wall_clock(StageTimes(), "blend")


@pytest.mark.gpu
@needs_cuda
def test_on_cuda_device_stages_are_timed_by_events_without_waiting():
    times = StageTimes(device="cuda")
    x = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with times.measure("harmonize"):
        for _ in range(20):
            x = x @ x.T / 4096
    queued_ms = (time.perf_counter() - t0) * 1e3
    with times.measure("sink"):  # host work: wall clock
        pass
    torch.cuda.synchronize()
    summary = times.summary()
    # The GPU's time for the products, not the few microseconds it took to queue them.
    assert summary["harmonize"]["median"] > queued_ms
    assert "sink" in summary


def test_a_cuda_label_without_a_gpu_is_timed_by_the_wall_clock(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert timed_by_the_wall_clock(StageTimes(device="cuda"), "matting")


@pytest.mark.gpu
@needs_cuda
def test_after_moving_to_the_host_the_wall_clock_times_every_stage_and_pending_events_are_dropped():
    times = StageTimes(device="cuda")
    with times.measure("blend"):
        torch.randn(2048, 2048, device="cuda").sum()
    times.on_host()
    assert not times._pending
    assert timed_by_the_wall_clock(times, "blend")
