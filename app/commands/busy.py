"""Keep CPU cores busy while measuring, as a video-call application does beside Harmonicam."""
from __future__ import annotations

import contextlib
import multiprocessing as mp
from typing import Iterator


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):  # check the event rarely: the point is to use the core
            x = (x * 31 + 7) & 0xFFFF


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """Run ``count`` processes that each keep one core busy for the duration of the block."""
    if count <= 0:
        yield
        return
    ctx = mp.get_context("spawn")  # no fork of a process that holds threads and CUDA state
    stop = ctx.Event()
    workers = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(count)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
