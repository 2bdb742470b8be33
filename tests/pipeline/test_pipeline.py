"""The pipeline: stage order, per-stage timings, swaps that never stall, crossfades and closing."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from app.backgrounds import ColourBackground
from app.handover import FADE_S
from app.pipeline import Pipeline
from app.stream import Stream
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
        self.closed = 0

    def matte(self, frame):
        alpha = np.zeros(frame.rgb.shape[:2], np.float32)
        alpha[:, : alpha.shape[1] // 2] = 1.0
        return Matte(alpha)

    def reset(self):
        self.resets += 1

    def close(self):
        self.closed += 1


class OffsetHarmonizer(Harmonizer):
    """Adds ``offset`` to every pixel; counts frames in its per-stream state."""

    def __init__(self, offset=0):
        super().__init__()
        self.offset = offset
        self.closed = 0

    def harmonize(self, composite, background, frame, state):
        state.data["frames"] = state.data.get("frames", 0) + 1
        return np.clip(composite.image.astype(int) + self.offset, 0, 255).astype(np.uint8)

    def close(self):
        self.closed += 1


def make_pipeline(sinks=(), harmonizer=None):
    return Pipeline(HalfMatting(), ColourBackground((0, 0, 255)), registry.create("blend", "linear"),
                    harmonizer or OffsetHarmonizer(), MattePostprocess(MatteOptions(smoothing_s=0, refine=False)),
                    list(sinks))


def frame_at(t, size=(8, 4), value=200):
    return Frame(np.full((size[1], size[0], 3), value, np.uint8), round(t * 30), t)


def test_stages_compose_the_same_frame():
    p = make_pipeline()
    rgb = np.full((20, 40, 3), 200, np.uint8)
    r = p.process(Frame(rgb, 0, 0.0))
    assert (r.output[:, :20] == 200).all() and (r.output[:, 20:] == (0, 0, 255)).all()
    assert set(p.times.summary()) == {"matting", "post-processing", "background", "blend", "harmonize"}
    assert r.alpha is r.composite.alpha  # the harmonizer and the previews see the alpha the blend used


def test_background_change_keeps_the_harmonizer_stream():
    p = make_pipeline()
    p.process(frame_at(0))
    p.process(frame_at(0.1))
    state = p.harmonizer_state
    p.set_background(ColourBackground((1, 1, 1)))
    assert p.harmonizer_state is state and state.data["frames"] == 2
    assert (p.process(frame_at(0.2)).output[:, 4:] == 1).all()


def test_reset_stream_resets_matting_and_closes_the_old_states():
    p = make_pipeline()
    p.process(frame_at(0))
    old = p.harmonizer_state
    closed = []
    old.closers.append(lambda: closed.append(1))
    p.reset_stream()
    p.close()  # waits for the closer thread
    assert p.matting.resets == 1 and closed == [1] and p.harmonizer_state is not old


def test_mirror_output_flips_what_sinks_get():
    sink = NullSink()
    p = make_pipeline([sink])
    p.set_mirror_output(True)
    p.emit(p.process(Frame(np.full((4, 8, 3), 9, np.uint8), 0, 0.0)))
    assert (sink.last[:, :4] == (0, 0, 255)).all()  # the person (left half) is now on the right


def test_a_harmonizer_switch_eases_from_the_old_look_to_the_new():
    old, new = OffsetHarmonizer(+40), OffsetHarmonizer(-40)
    p = make_pipeline(harmonizer=old)
    p.process(frame_at(0.0))
    p.set_harmonizer(new)
    values = [int(p.process(frame_at(t)).output[0, 0, 0]) for t in (0.1, 0.1 + FADE_S / 2, 0.2 + FADE_S)]
    assert values[0] == 240 and values[1] == pytest.approx(200, abs=2) and values[2] == 160
    p.close()
    assert old.closed == 1 and new.closed == 1


class BlockingPrediction:
    """Wraps a harmonizer's ``predict`` so that it blocks until released (a very slow network)."""

    def __init__(self, harmonizer):
        self.release = threading.Event()
        self.started = threading.Event()
        original = harmonizer.predict

        def predict(inputs, cache):
            self.started.set()
            self.release.wait(20)
            return original(inputs, cache)

        harmonizer.predict = predict


def run_frames(p, n, t0=0.0):
    """Process ``n`` frames on a thread; returns the thread (joined with a timeout by the caller)."""
    def work():
        for i in range(n):
            p.process(Frame(np.full((90, 160, 3), 120, np.uint8), i, t0 + i / 30))

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_swaps_during_a_slow_live_prediction_never_stall_the_frame_loop():
    harmonizer = registry.create("harmonizer", "harmonizer")  # the real asynchronous harmonizer
    slow = BlockingPrediction(harmonizer)
    p = make_pipeline(harmonizer=harmonizer)
    p.live = True
    p.process(frame_at(0.0, (160, 90)))
    assert slow.started.wait(10)  # the worker is inside a prediction that will not end by itself
    try:
        swapper = threading.Thread(target=lambda: (p.set_background(ColourBackground((9, 9, 9))),
                                                   p.set_harmonizer(registry.create("harmonizer", "none")),
                                                   p.set_background(ColourBackground((5, 5, 5)))))
        swapper.start()
        swapper.join(5)
        frames = run_frames(p, 30, t0=0.1)
        frames.join(5)
        assert not swapper.is_alive() and not frames.is_alive()  # neither waited for the prediction
    finally:
        slow.release.set()
    p.close()
    assert not [t for t in threading.enumerate() if t.name == "harmonizer-args"]


def test_close_while_predicting_stops_the_worker():
    harmonizer = registry.create("harmonizer", "harmonizer")
    slow = BlockingPrediction(harmonizer)
    p = make_pipeline(harmonizer=harmonizer)
    p.process(frame_at(0.0, (160, 90)))
    assert slow.started.wait(10)
    closer = threading.Thread(target=p.close)
    closer.start()
    time.sleep(0.05)
    slow.release.set()  # the prediction in flight finishes; nothing new starts
    closer.join(10)
    assert not closer.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "harmonizer-args"]


class FailingSink(NullSink):
    def close(self, success=True):
        raise OSError("disk full")


class ClosingSink(NullSink):
    def __init__(self):
        super().__init__()
        self.closed = []

    def close(self, success=True):
        self.closed.append(success)


def test_every_sink_is_closed_when_one_fails_to_close():
    first, last = ClosingSink(), ClosingSink()
    p = make_pipeline([first, FailingSink(), last])
    src = open_source("sample", size=(64, 36))
    with pytest.raises(OSError, match="disk full"):
        Stream(src, p).run(max_frames=2)
    src.close()
    assert first.closed == [True] and last.closed == [True]


def test_every_stage_is_closed_when_one_fails_to_close():
    harmonizer = OffsetHarmonizer()
    p = make_pipeline(harmonizer=harmonizer)

    def broken():
        raise RuntimeError("driver crashed")

    p.blend.close = broken
    with pytest.raises(RuntimeError, match="driver crashed"):
        p.close()
    assert harmonizer.closed == 1 and p.matting.closed == 1


def test_swaps_while_running_are_thread_safe():
    sink = NullSink()
    p = make_pipeline([sink])
    src = open_source("sample", size=(160, 90), loop=True)
    stream, running = Stream(src, p), threading.Event()
    errors = []

    def swapper():
        try:
            running.wait(30)
            for i in range(40):
                time.sleep(0.001)  # interleave with frames
                p.set_background(ColourBackground((i, i, i)))
                p.set_harmonizer(registry.create("harmonizer", "none") if i % 2 else OffsetHarmonizer(i))
                p.set_matting(HalfMatting())
                p.set_blend(registry.create("blend", "linear"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stream.stop()

    t = threading.Thread(target=swapper)
    t.start()
    count = stream.run(max_frames=2000, on_result=lambda r: running.set())
    t.join()
    src.close()
    p.close()
    assert not errors and count > 1 and sink.count == count
    assert sink.last.shape == (90, 160, 3)


LINEAR_BLEND = registry.create("blend", "linear")


class BrokenHarmonizer(OffsetHarmonizer):
    def harmonize(self, composite, background, frame, state):
        raise ValueError("weights went bad")


class BrokenBlend:
    learned = False
    device = "cpu"

    def blend(self, frame, matte, background, state):
        raise ValueError("blend exploded")

    def close(self):
        pass


def test_a_failing_harmonizer_or_blend_costs_no_frame_and_is_reported_once(caplog):
    p = make_pipeline(harmonizer=BrokenHarmonizer())
    p.set_blend(BrokenBlend())
    outputs = [p.process(frame_at(i / 30)).output for i in range(3)]
    for out in outputs:  # linear blending, no harmonization: the plain composite
        assert (out[:, :4] == 200).all() and (out[:, 4:] == (0, 0, 255)).all()
    faults = p.take_faults()
    assert len(faults) == 2 and "linear blending is used instead" in faults[0]
    assert "without harmonization" in faults[1] and p.take_faults() == []
    p.close()


class DeviceFailingHarmonizer(OffsetHarmonizer):
    def harmonize(self, composite, background, frame, state):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_device_failure_moves_the_pipeline_to_the_cpu():
    rebuilt = []

    def cpu_stages():
        rebuilt.append(1)
        return HalfMatting(), registry.create("blend", "linear"), OffsetHarmonizer(+10)

    failing = DeviceFailingHarmonizer()
    p = Pipeline(HalfMatting(), ColourBackground((0, 0, 255)), registry.create("blend", "linear"), failing,
                 MattePostprocess(MatteOptions(smoothing_s=0, refine=False)), device="cuda", resident=False,
                 cpu_stages=cpu_stages)
    out = p.process(frame_at(0.0)).output  # the failing frame is redone on the CPU
    assert rebuilt == [1] and p.device == "cpu" and not p.resident
    assert (out[:, :4] == 210).all()
    assert "now runs on the CPU" in p.take_faults()[0]
    p.close()
    assert failing.closed == 1


def test_a_stage_that_fails_to_build_closes_the_ones_built_before(monkeypatch, tmp_path):
    import app.stream as session
    from app.assemble import StageChoice
    from app.errors import RuntimeFailure

    closed = []

    class RecordingBackground(ColourBackground):
        def close(self):
            closed.append("background")

    monkeypatch.setattr(session, "parse_background", lambda spec, frame_locked: RecordingBackground((1, 2, 3)))
    original = session.make_matting

    def matting(choice):
        m = original(choice)
        m_close = m.close
        m.close = lambda: (closed.append("matting"), m_close())
        return m

    monkeypatch.setattr(session, "make_matting", matting)
    bad = tmp_path / "bad.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(RuntimeFailure):
        session.build_pipeline(StageChoice(harmonizer_weights=str(bad)), "#010203", [], frame_locked=True)
    assert sorted(closed) == ["background", "matting"]


def test_the_overlapped_steps_move_to_the_cpu_on_a_device_failure_too():
    class DeviceFailingMatting(HalfMatting):
        def matte(self, frame):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    class DeviceFailingPostprocess(MattePostprocess):  # the device's work fails; done again on the CPU, it works
        failed = False

        def __call__(self, frame, matte):
            if not self.failed:
                self.failed = True
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            return super().__call__(frame, matte)

    def cpu_stages():
        return HalfMatting(), registry.create("blend", "linear"), OffsetHarmonizer(+10)

    options = MatteOptions(smoothing_s=0, refine=False)
    for failing in ("matting", "post-processing", "harmonizer"):
        for steps in ("two", "three", "four"):
            postprocess = (DeviceFailingPostprocess if failing == "post-processing" else MattePostprocess)(options)
            p = Pipeline(DeviceFailingMatting() if failing == "matting" else HalfMatting(),
                         ColourBackground((0, 0, 255)), registry.create("blend", "linear"),
                         DeviceFailingHarmonizer() if failing == "harmonizer" else OffsetHarmonizer(), postprocess,
                         device="cuda", resident=False, cpu_stages=cpu_stages)
            done = p.matte_frame(frame_at(0.0))
            if steps in ("three", "four"):
                done = p.refine(done)
            if steps == "four":
                done = p.compose(done)
            out = p.finish(done).output  # the failing step is done again on the CPU
            assert p.device == "cpu" and (out[:, :4] == 210).all()
            assert len([f for f in p.take_faults() if "now runs on the CPU" in f]) == 1
            p.close()


def test_each_failing_stage_put_in_is_reported_even_where_python_reuses_an_id():
    """Reports are kept per slot until a swap, never by ``id()``: a new stage can get a freed one's id."""
    p = make_pipeline()
    ids = set()
    put_in = 0
    while put_in < 200:  # until a new stage gets the id of one reported before (it takes a few tries)
        blend = BrokenBlend()
        reused, put_in = id(blend) in ids, put_in + 1
        ids.add(id(blend))
        p.set_blend(blend)
        del blend
        p.process(frame_at(0.0))
        p.set_blend(LINEAR_BLEND)  # the broken one is retired, closed and freed
        p._closer.submit(lambda: None).result()
        if reused:
            break
    assert reused  # the situation this test is about did occur
    assert len(p.take_faults()) == put_in
    p.close()
