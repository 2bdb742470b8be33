"""Each stage's output on two paths of the pipeline, side by side, in grey levels.

Shared by the device-path tests and ``.ci/gpu-check`` (which writes the figures to its JSON):
the same stages, built from the same choice, run once per path on the same frames, and each
stage's output — the refined matte, the background, the composite, the final picture — is
compared with its twin from the other path.
"""
from __future__ import annotations

import numpy as np
import torch

from app.pipeline import FrameResult, Pipeline
from models.frame import on_device

STAGES = ("matte", "background", "composite", "output")


def usable_matting(preference: tuple[str, ...] = ("mediapipe", "selfie-torch")) -> str | None:
    """The first matting of ``preference`` that can run here (a GPU image has no mediapipe), else any, else None."""
    from models import registry

    usable = registry.usable("matting")
    return next((name for name in preference if name in usable), usable[0] if usable else None)


def _host(image) -> np.ndarray:
    """A stage's picture or matte as float64 in grey levels (0…255), H×W or H×W×3, wherever it lived."""
    if on_device(image):
        t = image.detach().to("cpu", torch.float64)[0]
        return (t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)).numpy() * 255
    a = np.asarray(image, np.float64)
    return a if image.dtype == np.uint8 else a * 255


def stage_pictures(result: FrameResult) -> dict[str, np.ndarray]:
    """{stage: its output for this frame} in grey levels."""
    return {"matte": _host(result.matte.alpha), "background": _host(result.background),
            "composite": _host(result.composite.image), "output": _host(result.output)}


def run_stages(pipeline: Pipeline, clip) -> list[dict[str, np.ndarray]]:
    """Every stage's output for each frame of ``clip`` (deterministic predictions); closes the pipeline."""
    pipeline.live = False
    try:
        return [stage_pictures(pipeline.process(frame)) for frame in clip]
    finally:
        pipeline.close()


def differences(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """{stage: mean, 99th percentile and largest absolute difference in grey levels} over all frames."""
    out = {}
    for stage in STAGES:
        diff = np.concatenate([np.abs(x[stage] - y[stage]).ravel() for x, y in zip(a, b)])
        out[stage] = {"mean": round(float(diff.mean()), 4), "p99": round(float(np.percentile(diff, 99)), 3),
                      "max": round(float(diff.max()), 3)}
    return out
