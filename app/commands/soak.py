"""``harmonicam bench --soak MINUTES``: a long run that switches backgrounds and harmonizers as a user does.

A virtual webcam runs for hours during calls. The soak runs the real pipeline
on a looping source, switches the background and the harmonizer every few
seconds through the same API as the window, and reports what would betray a
leak or a slowdown: resident memory, live threads and the frame time at the
start and at the end.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.assemble import StageChoice, make_harmonizer
from app.backgrounds import parse_background
from app.sinks.base import NullSink
from app.sources import open_source
from app.stream import Stream


def resident_mb() -> float:
    """This process's resident memory in MiB (Linux /proc; elsewhere the peak from getrusage).

    Freed memory is first handed back to the system (garbage collection and, with glibc,
    ``malloc_trim``): weights loaded at every harmonizer switch otherwise leave the C
    allocator's arenas at their high-water mark, which looks like growth but is not a leak.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if os.uname().sysname == "Darwin" else 1024)


@dataclass
class SoakReport:
    frames: int
    minutes: float
    switches: int
    rss_mb_start: float
    rss_mb_end: float
    threads_start: int  # before the pipeline was built
    threads_end: int    # after it was closed: more means a leaked worker
    frame_ms_start: float
    frame_ms_end: float

    def lines(self) -> list[str]:
        return [f"soak: {self.frames} frames in {self.minutes:.1f} min, {self.switches} background/harmonizer switches",
                f"  memory  {self.rss_mb_start:.0f} MiB → {self.rss_mb_end:.0f} MiB "
                f"({self.rss_mb_end - self.rss_mb_start:+.1f} MiB)",
                f"  threads {self.threads_start} before → {self.threads_end} after",
                f"  frame time (median) {self.frame_ms_start:.1f} ms → {self.frame_ms_end:.1f} ms"]


def soak(choice: StageChoice, backgrounds: list[str], harmonizers: list[str], *, source: str = "sample",
         size: tuple[int, int] = (640, 360), seconds: float | None = None, frames: int | None = None,
         switch_every: int = 60) -> SoakReport:
    """Run until ``seconds`` or ``frames``, switching every ``switch_every`` frames (backgrounds and
    harmonizers in turn). Memory is sampled after every round of switches from the first one on,
    so one-time allocations (weights, caches, thread pools) do not count as growth; the start and
    end figures are the medians of the first and the last third of the samples, because a single
    sample moves by tens of MiB with the allocator's arenas."""
    rounds = max(len(backgrounds), len(harmonizers))
    warmup = switch_every * rounds
    total = frames if frames is not None else None
    deadline = None if seconds is None else time.monotonic() + seconds
    bg_cycle, h_cycle = itertools.cycle(backgrounds), itertools.cycle(harmonizers)
    frame_ms: list[float] = []
    rss: list[float] = []
    count = switches = 0
    began = time.monotonic()
    threads_before = threading.active_count()
    # The stream owns and closes the source and the stages; the frames are driven here one by one, so the
    # frame time is the pipeline's own (the stream's loop would overlap frames and add its pacing).
    with Stream.build(open_source(source, size, loop=True), choice, next(bg_cycle), [NullSink()]) as stream:
        pipeline = stream.pipeline
        pipeline.live = True
        while (total is None or count < total) and (deadline is None or time.monotonic() < deadline):
            frame = stream.source.read()
            t0 = time.perf_counter()
            pipeline.emit(pipeline.process(frame))
            frame_ms.append((time.perf_counter() - t0) * 1e3)
            count += 1
            if count % switch_every == 0:
                switches += 1
                if switches % 2:
                    pipeline.set_background(parse_background(next(bg_cycle), frame_locked=False))
                else:
                    pipeline.set_harmonizer(make_harmonizer(StageChoice(harmonizer=next(h_cycle),
                                                                        device=choice.device,
                                                                        runtime=choice.runtime)))
            if count % warmup == 0:
                rss.append(resident_mb())
        rss.append(resident_mb())  # measured while running, like the others
    third = max(1, len(rss) // 3)
    # Compare whole rounds of switches, so the same backgrounds and harmonizers are in both windows.
    window = max(1, min(2 * warmup, len(frame_ms) // 2))
    first = min(warmup, max(0, len(frame_ms) - window))
    return SoakReport(
        frames=count, minutes=(time.monotonic() - began) / 60, switches=switches,
        rss_mb_start=float(np.median(rss[:third])), rss_mb_end=float(np.median(rss[-third:])),
        threads_start=threads_before, threads_end=threading.active_count(),
        frame_ms_start=float(np.median(frame_ms[first:first + window])) if frame_ms else 0.0,
        frame_ms_end=float(np.median(frame_ms[-window:])) if frame_ms else 0.0)
