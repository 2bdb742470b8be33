"""The stream controller: one source through one pipeline into its sinks, for every front end.

``run``, ``bench``, ``soak``, ``lut`` and the window all go through :class:`Stream`.
It owns the source and the pipeline (and, through it, the sinks), runs the frame
loop (overlapped steps :mod:`app.prefetch`, pacing, the pause while nobody
watches :mod:`app.idle`) on the caller's thread (:meth:`Stream.run`) or on its
own (:meth:`Stream.start`), swaps the source or the whole pipeline between
frames, and closes everything in one order on every path: the source is
interrupted first, so a read that waits for a lost camera never holds up a stop
or a signal; then the loop ends, the sinks are closed (a partial file is
discarded on an error), the pipeline and last the source are closed.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from app.assemble import StageChoice, make_blend, make_harmonizer, make_matting, resolve_runtime
from app.backgrounds import VideoBackground, parse_background
from app.closing import close_all
from app.idle import IdleGate
from app.pipeline import FrameResult, Pipeline
from app.prefetch import FramePrefetch
from app.sinks.base import Sink
from app.sources.base import Source
from models.matting.postprocess import MattePostprocess

log = logging.getLogger(__name__)


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


class Pacer:
    """Sleeps so that frames leave at most at ``fps`` (None: as fast as possible)."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._next: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self._next is None or now - self._next > self.period:  # late: don't try to catch up
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self.period


class Stream:
    """A source and a pipeline, run and closed together (a context manager).

    The source is opened by the caller (its errors are the caller's to phrase); the
    stream owns it and the pipeline from then on. :meth:`stop`, :meth:`set_source`,
    :meth:`set_pipeline` and :meth:`close` may be called from any thread.
    """

    def __init__(self, source: Source, pipeline: Pipeline) -> None:
        self.source = source
        self.pipeline = pipeline
        self._stop = threading.Event()
        self._latest: FrameResult | None = None  # the newest result of a stream on its own thread
        self._thread: threading.Thread | None = None
        #: The frame-rate cap of the loop on its own thread.
        self.fps_cap: float | None = None
        self._lock = threading.Lock()  # the source, pipeline and thread as a whole
        self._sinks_lock = threading.Lock()  # the pipeline that gets the sinks of set_sinks

    @classmethod
    def build(cls, source: Source, choice: StageChoice, background: str, sinks: list[Sink]) -> Stream:
        """The pipeline for ``choice`` around ``source``, which is closed when the pipeline fails to build."""
        try:
            return cls(source, build_pipeline(choice, background, sinks, frame_locked=not source.live))
        except BaseException:
            source.close()
            raise

    # --- the frame loop -------------------------------------------------------------------------
    def run(self, max_frames: int | None = None, fps_cap: float | None = None,
            on_result: Callable[[FrameResult], None] | None = None, live: bool | None = None,
            always_on: bool | Callable[[], bool] = False) -> int:
        """Process frames until the source ends, ``max_frames`` or :meth:`stop`; returns the frame count.

        Sinks are opened at the source's size and rate and all closed at the end, even when one of
        them fails to close; on an error they are closed with ``success=False`` so no partial file is
        kept. A file source feeding a real-time sink (virtual camera) plays at its own rate. ``live``
        (default: a live source or a real-time sink) tells harmonizers whether they may work
        asynchronously. While no app reads the virtual camera and no other output needs frames, no
        frame is read or processed (:mod:`app.idle`); ``always_on`` (or a callable asked before each
        frame) keeps working regardless. On the host path the next frames are captured, matted and
        post-processed while the current one is finished (:mod:`app.prefetch`).
        """
        source, pipeline, stop = self.source, self.pipeline, self._stop
        realtime = pipeline.outputs.realtime
        pipeline.live = (source.live or realtime) if live is None else live
        pacer = Pacer(fps_cap or (source.fps if realtime and not source.live else None))
        idle = IdleGate(always_on)
        last = None  # the newest output: what a paused stream keeps sending
        opened: list[Sink] = []
        count = 0
        prefetch = FramePrefetch(source, pipeline, overlap=not pipeline.resident)
        try:
            for sink in pipeline.sinks:
                opened.append(sink)  # before open(): a signal during it must still discard the partial file
                sink.open(source.size, fps_cap or source.fps)
            while (max_frames is None or count < max_frames) and not stop.is_set():
                if idle.should_pause(pipeline):
                    prefetch.drop()
                    idle.wait_for_reader(source, pipeline, last, stop)
                    continue
                captured = prefetch.next(wanted=None if max_frames is None else max_frames - count - 1)
                if captured is None:
                    break
                result = prefetch.process(captured)
                pacer.wait()
                pipeline.emit(result)
                last = result.output
                start = captured.frame.timestamp if source.live else captured.started
                pipeline.times.frame_finished((time.monotonic() - start) * 1e3)
                count += 1
                if on_result is not None:
                    on_result(result)
        except BaseException:
            source.interrupt()  # a read that waits for a lost camera returns at once: nothing below waits for it
            prefetch.close()  # nothing reads the source or runs a stage after this
            try:
                close_all([functools.partial(sink.close, success=False) for sink in opened], "the outputs")
            except Exception:  # the error that stopped the stream is the one to report
                log.warning("an output failed to close after an error", exc_info=True)
            raise
        prefetch.close()
        close_all([functools.partial(sink.close, success=True) for sink in opened], "the outputs")
        return count

    # --- on a thread of its own (the window) ----------------------------------------------------
    def start(self, fps_cap: float | None, on_end: Callable[[BaseException | None], None],
              always_on: Callable[[], bool] = lambda: True) -> None:
        """Run on a thread, keeping only the newest result (:meth:`take`); live (harmonizers never make
        a shown stream wait). ``on_end(error)`` runs on that thread when the stream ends by itself."""

        def loop() -> None:
            error = None
            try:
                self.run(fps_cap=fps_cap, on_result=self._hold, live=True, always_on=always_on)
            except Exception as exc:  # reported by on_end; the app lives on
                log.exception("the pipeline stopped")
                error = exc
            if not self._stop.is_set():
                on_end(error)

        self._stop.clear()
        self.fps_cap = fps_cap
        self._thread = threading.Thread(target=loop, name="pipeline", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _hold(self, result: FrameResult) -> None:
        self._latest = result  # one reference swap: atomic, the UI takes whatever is newest

    def take(self) -> FrameResult | None:
        """The newest result not taken yet, or None (a stream started with :meth:`start`)."""
        result, self._latest = self._latest, None
        return result

    def stop(self) -> None:
        """End the loop: the source is interrupted (a blocked read returns), then the loop's thread joined."""
        self._stop.set()
        self.source.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # --- swaps ----------------------------------------------------------------------------------
    def set_sinks(self, sinks: list[Sink]) -> None:
        """Send to ``sinks`` from the next frame on, also after :meth:`set_pipeline`; opening and closing
        them is the caller's (the window's virtual camera lives across sources and devices)."""
        with self._sinks_lock:
            self.pipeline.set_sinks(sinks)

    def set_source(self, source: Source, fps_cap: float | None, on_end: Callable[[BaseException | None], None],
                   always_on: Callable[[], bool] = lambda: True) -> None:
        """Stop, close the old source and go on with ``source`` on the same pipeline as a fresh stream: a
        background video follows a file frame by frame but plays on its own beside a camera."""
        with self._lock:
            self.stop()
            old, self.source = self.source, source
            old.close()
            background = self.pipeline.background
            if isinstance(background, VideoBackground) and background.frame_locked == source.live:
                self.pipeline.set_background(VideoBackground(background.path, frame_locked=not source.live))
            self.pipeline.reset_stream()
            self.start(fps_cap, on_end, always_on)

    def set_pipeline(self, pipeline: Pipeline, reopen: Callable[[], Source], fps_cap: float | None,
                     on_end: Callable[[BaseException | None], None],
                     always_on: Callable[[], bool] = lambda: True) -> None:
        """Go on with ``pipeline`` (another device) and the source opened again by ``reopen`` (a camera cannot
        be opened twice); the sinks move over and the old pipeline is closed (this waits for its stages: call
        it off the UI thread). The stream owns ``pipeline`` from the call on: when ``reopen`` fails, it is
        closed and the error raised, and the old pipeline stays, stopped."""
        with self._lock:
            self.stop()
            self.source.close()
            try:
                self.source = reopen()
            except BaseException:
                _close_replaced(pipeline)
                raise
            with self._sinks_lock:
                old, self.pipeline = self.pipeline, pipeline
                pipeline.set_sinks(old.sinks)
                old.set_sinks([])
            self.start(fps_cap, on_end, always_on)
        _close_replaced(old)

    def close(self) -> None:
        """Stop (the source is interrupted first), then close the pipeline and the source."""
        self.stop()
        close_all([self.pipeline.close, self.source.close], "the stream")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close_replaced(pipeline: Pipeline) -> None:
    try:
        pipeline.close()
    except Exception:  # a stage that fails to close must not undo a switch
        log.warning("closing a replaced pipeline failed", exc_info=True)
