"""The per-frame pipeline: matting → background → blending → harmonization → sinks.

The pipeline owns one of each stage and their per-stream states. On a CUDA
device the frame is uploaded once at the start of :meth:`Pipeline.process` and
the output downloaded once at its end; every stage in between runs where the
frame is.

A frame's work comes in two halves that may overlap across consecutive frames
(:mod:`app.prefetch`): :meth:`Pipeline.matte_frame` (matting and its
post-processing) and :meth:`Pipeline.finish` (background, blending,
harmonization). Each half keeps its own temporal state and runs under its own
lock, so frames go through each half in order.

Any stage can be swapped while the pipeline runs, from any thread, through
the ``set_*`` methods (the narrow API the window and the CLI use). The lock of
the half a stage belongs to is held while that half runs, so a swap lands
between two frames; nothing that can wait on a worker thread (closing a stage,
stopping a prediction worker) ever runs under a lock: it is handed to a closer
thread. Where both locks are taken, the matting half's is taken first. A harmonizer switch eases
from the old look to the new one; a background switch keeps the harmonizer's
smoothing, so the look eases to the new scene.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from app.backgrounds import Background
from app.closing import close_all
from app.sinks.base import Sink
from app.timing import StageTimes
from models.blending.base import Blend, Composite
from models.blending.linear import LinearBlend
from models.frame import Frame, Image, on_device
from models.harmonizers.base import Harmonizer
from models.matting.base import Matte, Matting
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.crossfade import crossfade
from models.ops.device_faults import is_device_failure
from models.ops.tensor_image import alpha_array, download, upload
from models.stream import StreamState

log = logging.getLogger(__name__)

#: What a failing blend is replaced with for a frame.
LINEAR = LinearBlend()

#: How long the old harmonizer's look takes to hand over to the new one, in media seconds.
FADE_S = 0.5
#: A new harmonizer that has no look after this long is shown as it is (the old one is dropped).
FADE_GIVE_UP_S = 5.0


@dataclass
class FrameResult:
    """Everything one frame produced. ``output`` is the host RGB uint8 the sinks get; the rest lives where
    the pipeline ran (see :mod:`models.frame`)."""

    frame: Frame
    matte: Matte
    background: Image
    composite: Composite
    output: np.ndarray

    @property
    def alpha(self) -> np.ndarray:
        """The refined alpha in host memory (float32 H×W), for previews."""
        a = self.composite.alpha
        return alpha_array(a) if on_device(a) else a


@dataclass(frozen=True)
class Matted:
    """The first half of a frame's work: the frame (uploaded on a device path) and its refined matte."""

    frame: Frame
    matte: Matte
    upload_ms: float = 0.0


@dataclass
class _Fade:
    harmonizer: Harmonizer
    state: StreamState
    started: float | None = None   # media time the new look appeared
    requested: float | None = None  # media time of the first frame after the switch

    @property
    def closers(self) -> list[Callable[[], None]]:
        return [self.state.close, self.harmonizer.close]


class Pipeline:
    def __init__(self, matting: Matting, background: Background, blend: Blend, harmonizer: Harmonizer,
                 postprocess: MattePostprocess | None = None, sinks: list[Sink] | None = None,
                 device: str = "cpu", resident: bool | None = None,
                 cpu_stages: Callable[[], tuple[Matting, Blend, Harmonizer]] | None = None) -> None:
        self.device = device
        #: Builds CPU replacements of the device-bound stages, for a fall-back after a device failure.
        self._cpu_stages = cpu_stages
        #: Frames live as torch tensors on ``device`` (default: on any device but the CPU, where
        #: NumPy and OpenCV are faster; tests run the tensor path on the CPU too).
        self.resident = device != "cpu" if resident is None else resident
        self.matting = matting
        self.background = background
        self.blend = blend
        self.harmonizer = harmonizer
        self.postprocess = postprocess or MattePostprocess()
        self.sinks = list(sinks or [])
        self.times = StageTimes()
        #: Flip the output horizontally (off by default: conferencing apps mirror only the self-view).
        self.mirror_output = False
        self._live = True
        self.blend_state = StreamState(live=True)
        self.harmonizer_state = StreamState(live=True)
        self._fade: _Fade | None = None
        self._reported: set[int] = set()
        self._faults: list[str] = []
        self._matting_lock = threading.RLock()  # matting and its post-processing
        self._lock = threading.RLock()  # everything after the matte
        # Closing can wait for workers: it never happens under the lock, always here.
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-closer")

    # --- swaps (thread-safe; take effect at the next frame) -------------------------------
    def _retire(self, *closers: Callable[[], None]) -> None:
        try:
            self._closer.submit(close_all, closers, "a replaced stage")
        except RuntimeError:  # the pipeline is closed already: nothing runs frames any more
            close_all(closers, "a replaced stage")

    def set_matting(self, matting: Matting) -> None:
        with self._matting_lock:
            old, self.matting = self.matting, matting
            self.postprocess.reset()
        self._retire(old.close)

    def set_background(self, background: Background) -> None:
        with self._lock:
            old, self.background = self.background, background
            self.harmonizer.background_changed(self.harmonizer_state)
            if self._fade is not None:
                self._fade.harmonizer.background_changed(self._fade.state)
        self._retire(old.close)

    def set_matte_options(self, options: MatteOptions) -> None:
        with self._matting_lock:
            old, self.postprocess = self.postprocess, MattePostprocess(options)
        self._retire(old.close)

    def set_sinks(self, sinks: list[Sink]) -> None:
        with self._lock:
            self.sinks = list(sinks)

    def set_blend(self, blend: Blend) -> None:
        with self._lock:
            old, old_state = self.blend, self.blend_state
            self.blend, self.blend_state = blend, StreamState(live=self._live)
        self._retire(old_state.close, old.close)

    def set_harmonizer(self, harmonizer: Harmonizer) -> None:
        """Swap the harmonizer; the old one keeps running until the new one has its look, then fades out."""
        with self._lock:
            retired = self._fade
            self._fade = _Fade(self.harmonizer, self.harmonizer_state)
            self.harmonizer, self.harmonizer_state = harmonizer, StreamState(live=self._live)
        if retired is not None:
            self._retire(*retired.closers)

    def set_strength(self, strength: float) -> None:
        """Harmonization strength 0…1; the shared machinery applies it from the next frame."""
        self.harmonizer.strength = strength

    def set_keep_bright(self, keep_bright: bool) -> None:
        """Whether the person may be darkened or flattened only as far as the background justifies; the shared
        machinery measures it from the next prediction and eases to it."""
        self.harmonizer.keep_bright = keep_bright

    def set_mirror_output(self, mirror: bool) -> None:
        self.mirror_output = mirror

    def reset_stream(self) -> None:
        """A new source (or a jump in it): forget every temporal state and the timings."""
        with self._matting_lock, self._lock:
            self.times.clear()
            self.matting.reset()
            self.postprocess.reset()
            retired = self._new_states()
        self._retire(*retired)

    @property
    def live(self) -> bool:
        return self._live

    @live.setter
    def live(self, value: bool) -> None:
        with self._lock:
            if value == self._live:
                return
            self._live = value
            retired = self._new_states()
        self._retire(*retired)

    def _new_states(self) -> list[Callable[[], None]]:
        """Fresh per-stream states (under the lock); returns the closers of the old ones."""
        old = [self.blend_state.close, self.harmonizer_state.close]
        if self._fade is not None:
            old += self._fade.closers
            self._fade = None
        self.blend_state = StreamState(live=self._live)
        self.harmonizer_state = StreamState(live=self._live)
        return old

    # --- faults ---------------------------------------------------------------------------------
    def _report(self, stage: object, text: str) -> None:
        """Log a stage's failure once per stage instance and keep the sentence for the window."""
        if id(stage) in self._reported:
            return
        self._reported.add(id(stage))
        log.warning("%s", text, exc_info=log.isEnabledFor(logging.DEBUG))
        self._faults.append(text)

    def _guarded(self, stage: object, run: Callable[[], Any], fallback: Callable[[], Any], kind: str,
                 instead: str) -> Any:
        """``run()``, or — when the stage raises — ``fallback()`` for this frame, reported once.
        A device failure is not the stage's fault: it goes up to :meth:`process`."""
        try:
            return run()
        except Exception as exc:
            if is_device_failure(exc):
                raise
            self._report(stage, f"the {type(stage).__name__} {kind} failed ({exc}); {instead}")
            return fallback()

    def take_faults(self) -> list[str]:
        """Sentences about stages that failed and were replaced since the last call (for the window)."""
        with self._lock:
            faults, self._faults = self._faults, []
        return faults

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """A device failure (out of memory, a lost GPU): rebuild the device-bound stages on the CPU."""
        if self._cpu_stages is None:
            raise exc
        matting, blend, harmonizer = self._cpu_stages()
        retired = [self.matting.close, self.blend.close, self.harmonizer.close, *self._new_states()]
        self.matting, self.blend, self.harmonizer = matting, blend, harmonizer
        self.postprocess.reset()
        self.background.reset_device_cache()
        self.device, self.resident = "cpu", False
        self._retire(*retired)
        self._report(self, f"the GPU failed ({str(exc).splitlines()[0][:120]}); Harmonicam now runs on the CPU")

    # --- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on ``frame``; the alpha always belongs to this very frame.

        A blend or harmonizer that raises is replaced for that frame by linear blending or
        by the plain composite (reported once); a device failure moves the pipeline to the CPU.
        """
        with self._matting_lock, self._lock:
            try:
                return self._finish(self._matte_frame(frame))
            except Exception as exc:
                if not (self.device != "cpu" and is_device_failure(exc)):
                    raise
                self._fall_back_to_cpu(exc)
                return self._finish(self._matte_frame(frame))

    def matte_frame(self, frame: Frame) -> Matted:
        """The first half of :meth:`process`, for frame loops that overlap the halves of consecutive
        frames (host path only: a device failure is not caught here)."""
        with self._matting_lock:
            return self._matte_frame(frame)

    def finish(self, matted: Matted) -> FrameResult:
        """The second half of :meth:`process`, for the frame :meth:`matte_frame` gave."""
        with self._lock:
            return self._finish(matted)

    def _matte_frame(self, frame: Frame) -> Matted:
        t0 = time.perf_counter()
        if self.resident:  # the one upload
            frame = Frame(frame.rgb, frame.index, frame.timestamp, upload(frame.rgb, self.device))
        upload_ms = (time.perf_counter() - t0) * 1e3
        with self.times.measure("matting"):
            return Matted(frame, self.postprocess(frame, self.matting.matte(frame)), upload_ms)

    def _finish(self, matted: Matted) -> FrameResult:
        t, frame, matte = self.times, matted.frame, matted.matte
        with t.measure("background"):
            background = self.background.at(frame, matte.alpha)
        with t.measure("blend"):
            composite = self._guarded(
                self.blend, lambda: self.blend.blend(frame, matte, background, self.blend_state),
                lambda: LINEAR.blend(frame, matte, background, self.blend_state), "blend",
                "linear blending is used instead")
        with t.measure("harmonize"):
            image = self._guarded(
                self.harmonizer, lambda: self.harmonizer.harmonize(composite, background, frame, self.harmonizer_state),
                lambda: composite.image, "harmonizer", "the picture is shown without harmonization")
            if self._fade is not None:
                image = self._crossfade(image, composite, background, frame)
        t0 = time.perf_counter()
        output = download(image) if on_device(image) else image  # the one download
        if self.resident:
            t.add("transfer", matted.upload_ms + (time.perf_counter() - t0) * 1e3)
        return FrameResult(frame, matte, background, composite, output)

    def _crossfade(self, image: Image, composite: Composite, background: Image, frame: Frame) -> Image:
        fade, now = self._fade, frame.timestamp
        fade.requested = now if fade.requested is None else fade.requested
        if fade.started is None and self.harmonizer.ready(self.harmonizer_state):
            fade.started = now
        waited = now - fade.requested
        weight = 0.0 if fade.started is None else (now - fade.started) / FADE_S
        if weight >= 1 or waited < 0 or waited > FADE_GIVE_UP_S:
            self._fade = None
            self._retire(*fade.closers)
            return image
        try:
            old = fade.harmonizer.harmonize(composite, background, frame, fade.state)
        except Exception:  # the outgoing method failing must not cost the frame
            log.warning("the previous harmonizer failed while fading out", exc_info=True)
            self._fade = None
            self._retire(*fade.closers)
            return image
        return crossfade(old, image, weight)

    def emit(self, result: FrameResult) -> None:
        with self.times.measure("sink"):
            self._send(result.output)

    def resend(self, output: np.ndarray) -> None:
        """Send ``output`` (a result's, or a black frame) again, untimed: the keep-alive frames of a paused
        stream (see :mod:`app.idle`)."""
        self._send(output)

    def _send(self, output: np.ndarray) -> None:
        with self._lock:  # a sink removed by set_sinks is never sent to after
            output = output[:, ::-1] if self.mirror_output else output
            for sink in self.sinks:
                sink.send(output)

    def close(self) -> None:
        """Close every stage and state, even when one of them fails; waits for retired stages."""
        with self._matting_lock, self._lock:
            closers = [self.harmonizer_state.close, self.blend_state.close]
            if self._fade is not None:
                closers += self._fade.closers
                self._fade = None
            closers += [self.harmonizer.close, self.blend.close, self.matting.close, self.postprocess.close,
                        self.background.close]
        self._closer.shutdown(wait=True)
        close_all(closers, "the pipeline")


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
