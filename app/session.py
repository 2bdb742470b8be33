"""One lifecycle for every front end: build the stages, run a source through them, close everything.

``run``, ``bench``, ``lut`` and the window all go through here, so every stage
and sink is closed on every path — also when building one of them fails or
when closing one of them raises.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Callable

from app.assemble import StageChoice, create, make_blend, make_harmonizer, make_matting, resolve_runtime
from app.backgrounds import parse_background
from app.closing import close_all
from app.pipeline import FrameResult, Pipeline
from app.runner import run_stream
from app.sinks.base import Sink
from app.sources.base import Source
from models.matting.postprocess import MattePostprocess

log = logging.getLogger(__name__)

__all__ = ["Session", "build_pipeline", "create"]


def build_pipeline(choice: StageChoice, background: str, sinks: list[Sink], frame_locked: bool) -> Pipeline:
    """A ready pipeline; when one stage fails to build, every stage made so far is closed again."""
    built: list[Callable[[], None]] = []
    try:
        matting = make_matting(choice)
        built.append(matting.close)
        bg = parse_background(background, frame_locked=frame_locked)
        built.append(bg.close)
        blend = make_blend(choice)
        built.append(blend.close)
        harmonizer = make_harmonizer(choice)
    except BaseException:
        close_all(reversed(built), "a half-built pipeline")
        raise
    log.info("matting %s on %s; stages on %s (networks on %s)", choice.matting, getattr(matting, "provider", "cpu"),
             choice.device, resolve_runtime(choice.runtime, choice.device))
    on_cpu = replace(choice, device="cpu")
    return Pipeline(matting, bg, blend, harmonizer, MattePostprocess(choice.matte), sinks, device=choice.device,
                    cpu_stages=lambda: (make_matting(on_cpu), make_blend(on_cpu), make_harmonizer(on_cpu)))


class Session:
    """A source and the pipeline built for it, closed together (use as a context manager).

    The source is opened by the caller (its errors are the caller's to phrase); the
    session owns it from then on and closes it even when the pipeline fails to build.
    """

    def __init__(self, source: Source, choice: StageChoice, background: str, sinks: list[Sink]) -> None:
        self.source = source
        try:
            self.pipeline = build_pipeline(choice, background, sinks, frame_locked=not source.live)
        except BaseException:
            source.close()
            raise

    def run(self, max_frames: int | None = None, fps_cap: float | None = None,
            stop: threading.Event | None = None, on_result: Callable[[FrameResult], None] | None = None,
            live: bool | None = None, always_on: bool = False) -> int:
        return run_stream(self.source, self.pipeline, max_frames, fps_cap, stop, on_result, live, always_on)

    def close(self) -> None:
        close_all([self.pipeline.close, self.source.close], "the session")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
