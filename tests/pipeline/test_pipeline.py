"""The pipeline: stage order, per-stage timings and thread-safe swaps while running."""
from __future__ import annotations

import threading
import time

import numpy as np

from app.backgrounds import ColourBackground
from app.pipeline import Pipeline
from app.runner import run_stream
from app.sinks.base import NullSink
from app.sources import open_source
from models import registry
from models.frame import Frame
from models.harmonizers.base import Harmonizer
from models.matting.base import Matte, Matting
from models.matting.postprocess import MatteOptions, MattePostprocess


class HalfMatting(Matting):
    """Left half person: a predictable matte for exact checks."""

    def __init__(self):
        self.resets = 0

    def matte(self, frame):
        alpha = np.zeros(frame.rgb.shape[:2], np.float32)
        alpha[:, : alpha.shape[1] // 2] = 1.0
        return Matte(alpha)

    def reset(self):
        self.resets += 1


class RecordingHarmonizer(Harmonizer):
    """Counts frames in its per-stream state."""

    def harmonize(self, composite, alpha, background, frame, state):
        state.data["frames"] = state.data.get("frames", 0) + 1
        return composite


def make_pipeline(sinks=()):
    return Pipeline(HalfMatting(), ColourBackground((0, 0, 255)), registry.create("blend", "linear"),
                    RecordingHarmonizer(), MattePostprocess(MatteOptions(smoothing_s=0, refine=False)), list(sinks))


def test_stages_compose_the_same_frame():
    p = make_pipeline()
    rgb = np.full((20, 40, 3), 200, np.uint8)
    r = p.process(Frame(rgb, 0, 0.0))
    assert (r.output[:, :20] == 200).all() and (r.output[:, 20:] == (0, 0, 255)).all()
    assert set(p.times.summary()) == {"matting", "background", "blend", "harmonize"}


def test_background_change_starts_a_new_stream_state():
    p = make_pipeline()
    f = Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0)
    p.process(f)
    p.process(f)
    assert p.state.data["frames"] == 2
    p.set_background(ColourBackground((1, 1, 1)))
    assert p.state.data == {} and p.state.background_version == p.background.version


def test_reset_stream_resets_matting():
    p = make_pipeline()
    p.reset_stream()
    assert p.matting.resets == 1


def test_mirror_output_flips_what_sinks_get():
    sink = NullSink()
    p = make_pipeline([sink])
    p.mirror_output = True
    p.emit(p.process(Frame(np.full((4, 8, 3), 9, np.uint8), 0, 0.0)))
    assert (sink.last[:, :4] == (0, 0, 255)).all()  # the person (left half) is now on the right


def test_swaps_while_running_are_thread_safe():
    sink = NullSink()
    p = make_pipeline([sink])
    src = open_source("sample", size=(160, 90), loop=True)
    stop, running = threading.Event(), threading.Event()
    errors = []

    def swapper():
        try:
            running.wait(30)
            for i in range(40):
                time.sleep(0.001)  # interleave with frames
                p.set_background(ColourBackground((i, i, i)))
                p.set_harmonizer(registry.create("harmonizer", "none") if i % 2 else RecordingHarmonizer())
                p.set_matting(HalfMatting())
                p.set_blend(registry.create("blend", "linear"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=swapper)
    t.start()
    count = run_stream(src, p, max_frames=2000, stop=stop, on_result=lambda r: running.set())
    t.join()
    src.close()
    assert not errors and count > 1 and sink.count == count
    assert sink.last.shape == (90, 160, 3)
