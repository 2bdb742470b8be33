"""How many threads each runtime may use, so the frame loop, the predictor and the call app share the CPU.

On a CPU the harmonizer's predictor (torch, on a worker thread) competes with
the frame loop (OpenCV, MediaPipe, ONNX Runtime) and with the video-call
application itself. Measured on a 2-core machine with one core kept busy by
another process: one prediction took 100 ms with torch's default two threads
fighting for the free core, 37 ms with one thread (busy or idle). Giving torch
half the cores keeps the predictor from starving the loop.

The frame loop itself runs on several threads on a CPU (the steps of consecutive
frames overlap, :mod:`app.prefetch`), so OpenCV's pool gets half the cores too: its
per-pixel loops on 320–1280-pixel maps gain little from more threads, and the steps
then stop waiting for each other's workers (measured when the loop had two threads:
2-core EPYC, 1280×720, ``harmonicam bench``: 57 → 60–63 FPS with one thread).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import cv2
import torch

T = TypeVar("T")


@dataclass(frozen=True)
class ThreadBudget:
    torch: int        # intra-op threads of torch (the predictor networks)
    opencv: int       # OpenCV's parallel_for pool (the frame loop's per-pixel work)
    onnxruntime: int  # intra-op threads of each ONNX Runtime session (matting models)


def thread_budget(cores: int | None = None) -> ThreadBudget:
    """The budget for a machine with ``cores`` logical cores (default: this one's)."""
    cores = max(1, cores or os.cpu_count() or 1)
    half = max(1, cores // 2)
    return ThreadBudget(torch=min(half, 8), opencv=half, onnxruntime=min(half, 8))


def apply_thread_budget(budget: ThreadBudget | None = None) -> ThreadBudget:
    """Set torch's and OpenCV's pools (ONNX Runtime sessions read ``budget.onnxruntime`` when created)."""
    budget = budget or thread_budget()
    torch.set_num_threads(budget.torch)
    cv2.setNumThreads(budget.opencv)
    return budget


#: How much lower than the frame loop a background worker runs (Linux nice steps): at +5 the kernel gives
#: it about a third of a contended core's share, so the harmonizer's predictions (a few a second, ~9 ms
#: each on ONNX Runtime) take the time the frame loop leaves rather than the frame loop's own (2-core EPYC,
#: 1280×720, ``harmonicam bench``: 63 → 65 FPS idle, measured at 10 predictions a second, a rate that held with
#: one core busy).
BACKGROUND_NICE = 5


def yield_to_the_frame_loop() -> None:
    """Lower the calling thread's scheduling priority by ``BACKGROUND_NICE`` (Linux: threads have their own
    nice value); elsewhere, or where it is not allowed, nothing changes."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
    except (AttributeError, OSError):  # no per-thread priorities here (Windows, macOS) or not permitted
        pass


class LowPriorityJob:
    """At most one job at a time on a worker thread below the frame loop's priority, with what it was asked for.

    The models a live stream runs beside its frames every so often (the face and hand landmarks, the body probe)
    keep one job in flight each: a frame that finds it running carries on with what it had, and its answer is
    taken up at the first frame after it ends, with the ``context`` it was submitted with (the frame it looked
    at). The worker thread, named ``name``, is made at first use; ``executor`` replaces it (a test runs the jobs
    inline)."""

    def __init__(self, name: str, executor: Executor | None = None) -> None:
        self.name = name
        self._executor = executor
        self._own: ThreadPoolExecutor | None = None  # the worker made here, shut down by close()
        self._job: tuple[Future, Any] | None = None

    @property
    def running(self) -> bool:
        """Whether a job was submitted and not yet taken up or forgotten (it may have ended)."""
        return self._job is not None

    def done(self) -> bool:
        """Whether a job was submitted and has ended, so :meth:`take` does not wait."""
        return self._job is not None and self._job[0].done()

    def _worker(self) -> Executor:
        if self._executor is None:
            self._executor = self._own = ThreadPoolExecutor(1, thread_name_prefix=self.name,
                                                            initializer=yield_to_the_frame_loop)
        return self._executor

    def make(self, factory: Callable[[], T]) -> T:
        """``factory()``, made on the worker and waited for. A thread starts at its creator's priority (Linux),
        so a model that runs on threads of its own (MediaPipe's graphs) made here runs them below the frame loop
        too; made on the frame loop's thread, they would take the loop's share of a contended core."""
        return self._worker().submit(factory).result()

    def submit(self, fn: Callable[..., Any], *args: Any, context: Any = None) -> None:
        """Run ``fn(*args)`` on the worker; the caller submits only while nothing is :attr:`running`."""
        self._job = (self._worker().submit(fn, *args), context)

    def take(self) -> tuple[Any, Any]:
        """(the job's answer, its context), waiting for it to end; its exception is raised here."""
        future, context = self._job
        self._job = None
        return future.result(), context

    def settle(self) -> None:
        """Let a job in flight end and forget it (its model may be closed next); an answer nobody takes up,
        so its failure is nobody's."""
        job, self._job = self._job, None
        if job is not None:
            job[0].exception()

    def close(self) -> None:
        """Settle, and stop the worker made here."""
        self.settle()
        if self._own is not None:
            self._own.shutdown()
            self._executor = self._own = None
