"""Timing the fused Harmonizer filter application against the official-style reference, side by side.

Used by ``harmonicam bench``; the frame is a real photo with a person-like matte
and every filter is active.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from models.harmonizers.harmonizer.filter_apply import FilterApplier, apply_filters_reference_uint8

BENCH_ARGS = (0.15, 0.2, 0.25, 0.3, -0.2, 0.2)


def bench_frame(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A real photo at ``width``×``height`` and a soft, person-like matte (≈40 % of the frame).

    The photo is Grace Hopper's public-domain portrait that ships with matplotlib
    (a dependency of mediapipe), so the benchmark runs on any installation.
    """
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = np.zeros((height, width), np.float32)
    cv2.ellipse(alpha, (width // 2, int(height * 0.75)), (int(width * 0.2), int(height * 0.6)),
                0, 0, 360, 1.0, -1)
    cv2.circle(alpha, (width // 2, int(height * 0.3)), int(height * 0.17), 1.0, -1)
    k = max(3, (width // 80) | 1)
    return photo, cv2.GaussianBlur(alpha, (k, k), 0)


def _median_ms(fn, repeats: int, sync) -> tuple[float, object]:
    result = fn()  # warm-up (caches, tables, kernels), also the result compared
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), result


def time_filter_paths(width: int = 1920, height: int = 1080, device: str | torch.device = "cpu",
                      repeats: int = 10, reference_repeats: int = 3, workers: int = 1
                      ) -> dict[str, float]:
    """Median ms per frame of the fast path and of the reference, their ratio and max difference.

    The frame is :func:`bench_frame` (a photo with a person-like matte) and the
    arguments :data:`BENCH_ARGS`, so every filter is active; timings include the
    uint8 conversions and, on a GPU, exclude host↔device copies of the fast path.
    """
    device = torch.device(device)
    photo, alpha = bench_frame(width, height)
    applier = FilterApplier(device, workers=workers)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    comp, mask = photo, alpha
    if device.type != "cpu":
        comp, mask = torch.from_numpy(photo).to(device), torch.from_numpy(alpha).to(device)
    try:
        fast_ms, fast = _median_ms(lambda: applier(comp, mask, BENCH_ARGS), repeats, sync)
    finally:
        applier.close()
    reference_ms, ref = _median_ms(
        lambda: apply_filters_reference_uint8(photo, alpha, BENCH_ARGS, device=device), reference_repeats, sync)
    fast = fast.cpu().numpy() if isinstance(fast, torch.Tensor) else fast
    return {"fast_ms": fast_ms, "reference_ms": reference_ms, "speedup": reference_ms / fast_ms,
            "max_abs_diff": float(np.abs(fast.astype(np.int16) - ref).max())}
