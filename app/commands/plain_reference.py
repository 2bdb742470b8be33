"""The ``plain`` row of ``harmonicam bench``: what a minimal virtual-background app does per frame.

It is the yardstick for every speed claim: MediaPipe's landscape selfie model
(144×256) fed a copy of the frame at its own input size, the small mask
smoothed over time with an exponential average and enlarged to the frame, one
linear blend over the background — no matte post-processing, no
harmonization, no second thread. That is the per-frame work of the popular
open-source webcam background tools (``../peers`` in the research notes): all
of them segment a small copy, smooth and enlarge the mask and alpha-blend.

It reads the same source and composites over the same background as the other
rows, in the same process, so its frames per second divide theirs into a ratio
that holds across machines of a kind, where absolute figures move by ±30 %.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from app.backgrounds import Background, parse_background
from app.commands.busy import busy_cores
from app.sinks.base import NullSink
from app.sources import open_source
from app.timing import StageTimes, run_figures
from models import registry
from models.frame import Frame
from models.matting.mediapipe_selfie import MediaPipeSelfie

#: The landscape model's input, width × height.
MODEL_SIZE = (256, 144)
#: Weight of the previous mask in the temporal average (the OBS background-removal plugin's default, 0.85,
#: is in this range; any constant costs the same).
KEEP = 0.5
PLAIN = "plain"
#: The registry's name of the model the plain row runs.
PLAIN_MATTING = "mediapipe-landscape"


class PlainVirtualBackground:
    """Segment a small copy, average the mask over time, enlarge it, blend linearly."""

    def __init__(self) -> None:
        self._segmenter: MediaPipeSelfie = registry.create("matting", PLAIN_MATTING)
        self._mask: np.ndarray | None = None

    def __call__(self, frame: Frame, background: Background, times: StageTimes) -> np.ndarray:
        rgb = frame.rgb
        with times.measure("matting"):
            # Fed at the model's own input size, MediaPipe resizes nothing; the mask comes back at that size.
            mask = self._segmenter.segment(cv2.resize(rgb, MODEL_SIZE, interpolation=cv2.INTER_AREA))
            self._mask = mask if self._mask is None else cv2.addWeighted(self._mask, KEEP, mask, 1 - KEEP, 0)
            alpha = cv2.resize(self._mask, frame.size, interpolation=cv2.INTER_LINEAR)
        with times.measure("background"):
            picture = background.at(frame, alpha)
        with times.measure("blend"):
            return cv2.blendLinear(rgb, picture, alpha, 1.0 - alpha)

    def close(self) -> None:
        self._segmenter.close()


def plain_row(source_spec: str, size: tuple[int, int], background_spec: str, frames: int, warmup: int,
              busy: int = 0) -> dict:
    """One bench row for the plain reference: same source, background and sink as the pipeline rows."""
    source = open_source(source_spec, size, loop=True)
    background = parse_background(background_spec)
    app = PlainVirtualBackground()
    sink, times = NullSink(), StageTimes()
    try:
        def run(count: int) -> int:
            done = 0
            while done < count:
                t0 = time.perf_counter()
                with times.measure("capture"):
                    frame = source.read()
                if frame is None:
                    break
                out = app(frame, background, times)
                with times.measure("sink"):
                    sink.send(out)
                times.frame_finished((time.perf_counter() - t0) * 1e3)
                done += 1
            return done

        run(warmup)
        times.clear()
        with busy_cores(busy):
            t0 = time.perf_counter()
            count = run(frames)
            wall = time.perf_counter() - t0
    finally:
        app.close()
        background.close()
        source.close()
    return {
        "device": "cpu", "runtime": "mediapipe", "providers": ["mediapipe-xnnpack"], "busy_cores": busy,
        "resolution": f"{size[0]}x{size[1]}", "matting": PLAIN_MATTING, "blend": PLAIN,
        "harmonizer": "none", **run_figures(times, count, wall),
    }
