"""Overlapped frames (app.prefetch): the same output frame for frame, each step on its own thread, no frame read in
vain, a clean stop."""
from __future__ import annotations

import threading

import numpy as np

from app.assemble import StageChoice
from app.prefetch import FramePrefetch
from app.stream import Stream, build_pipeline
from app.sinks.base import NullSink
from app.sources import open_source

SIZE = (320, 180)


class CountingSource:
    """Wraps a source and counts reads; records which thread read."""

    def __init__(self, source):
        self.inner, self.reads, self.threads = source, 0, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read(self):
        self.reads += 1
        self.threads.add(threading.current_thread().name)
        return self.inner.read()


def outputs(overlap: bool, frames: int = 12) -> list[np.ndarray]:
    """The real default CPU stages (MediaPipe, defringe, harmonizer) on the sample clip, file mode."""
    pipeline = build_pipeline(StageChoice(blend="defringe", harmonizer="harmonizer"), "#336699", [NullSink()],
                              frame_locked=True)
    pipeline.live = False
    source = open_source("sample", SIZE)
    prefetch = FramePrefetch(source, pipeline, overlap)
    got = []
    try:
        for k in range(frames):
            got.append(prefetch.process(prefetch.next(wanted=frames - k - 1)).output)
    finally:
        prefetch.close()
        pipeline.close()
        source.close()
    return got


def test_overlapped_frames_are_the_frames_of_the_plain_loop():
    plain, overlapped = outputs(overlap=False), outputs(overlap=True)
    assert len(plain) == len(overlapped) == 12
    for a, b in zip(plain, overlapped):
        np.testing.assert_array_equal(a, b)
    assert len({a.tobytes() for a in plain}) > 1  # the clip moves: the frames really differ


def test_the_stream_reads_exactly_the_frames_it_processes_and_each_step_ahead_has_a_thread():
    pipeline = build_pipeline(StageChoice(blend="linear", harmonizer="none"), "#336699", [NullSink()],
                              frame_locked=True)
    source = CountingSource(open_source("sample", SIZE, loop=True))
    matted_on, post_processed_on, blended_on = [], [], []
    postprocess, matte_frame, blend = pipeline.postprocess, pipeline.matte_frame, pipeline.blend.blend

    def recorded(frame, matte):
        post_processed_on.append(threading.current_thread().name)
        return postprocess(frame, matte)

    def recorded_matte(frame):
        matted_on.append(threading.current_thread().name)
        return matte_frame(frame)

    def recorded_blend(*args):
        blended_on.append(threading.current_thread().name)
        return blend(*args)

    pipeline.postprocess, pipeline.matte_frame, pipeline.blend.blend = recorded, recorded_matte, recorded_blend
    try:
        assert Stream(source, pipeline).run(max_frames=7) == 7
    finally:
        pipeline.postprocess = postprocess
        pipeline.close()
        source.close()
    assert source.reads == 7
    # Every frame, the first too, is read, matted, post-processed and blended (with its background) each on a
    # thread of its own, so each step sees the frames in order.
    assert source.threads == {"frame-capture_0"}
    assert matted_on == ["frame-matte_0"] * 7
    assert post_processed_on == ["frame-refine_0"] * 7
    assert blended_on == ["frame-compose_0"] * 7


def test_a_live_source_is_read_as_the_matting_starts_on_its_frame():
    """A camera hands over the newest frame its own thread decoded: reading it ahead would only make it older."""
    pipeline = build_pipeline(StageChoice(blend="linear", harmonizer="none"), "#336699", [NullSink()],
                              frame_locked=True)
    source = CountingSource(open_source("sample", SIZE, loop=True))
    source.live = True
    try:
        assert Stream(source, pipeline).run(max_frames=5) == 5
    finally:
        pipeline.close()
        source.close()
    assert source.reads == 5 and source.threads == {"frame-matte_0"}


def test_stop_leaves_no_read_running():
    pipeline = build_pipeline(StageChoice(blend="linear", harmonizer="none"), "#336699", [NullSink()],
                              frame_locked=True)
    source = CountingSource(open_source("sample", SIZE, loop=True))
    stream = Stream(source, pipeline)

    def stop_after_three(result):
        if result.frame.index >= 2:
            stream.stop()

    try:
        count = stream.run(on_result=stop_after_three)
        reads = source.reads
    finally:
        pipeline.close()
        source.close()
    assert count == 3
    assert reads == 7  # the four frames prepared ahead are read, then dropped; nothing reads after the return
    assert source.reads == reads
