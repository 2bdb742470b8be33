"""How many threads each runtime may use, so the frame loop, the predictor and the call app share the CPU.

On a CPU the harmonizer's predictor (torch, on a worker thread) competes with
the frame loop (OpenCV, MediaPipe, ONNX Runtime) and with the video-call
application itself. Measured on a 2-core machine with one core kept busy by
another process: one prediction took 100 ms with torch's default two threads
fighting for the free core, 37 ms with one thread (busy or idle). Giving torch
half the cores keeps the predictor from starving the loop.

The frame loop itself runs on two threads on a CPU (the next frame is matted
while the current one is finished, :mod:`app.prefetch`), so OpenCV's pool gets
half the cores too: its per-pixel loops on 320–1280-pixel maps gain little from
more threads and the two halves then stop waiting for each other's workers
(2-core EPYC, 1280×720, ``harmonicam bench``: 57 → 60–63 FPS with one thread).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import cv2
import torch


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
