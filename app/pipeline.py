"""The per-frame path: matting → background → blending → harmonization → output.

On a CUDA device the frame is uploaded once at the start and the output
downloaded once at the end; every stage in between runs where the frame is.

A frame's work comes in four steps that may overlap across consecutive frames
(:mod:`app.prefetch`): :meth:`Pipeline.matte_frame` (the matting model), :meth:`Pipeline.refine`
(the matte's post-processing), :meth:`Pipeline.compose` (the background, the blend) and
:meth:`Pipeline.finish` (harmonization); :meth:`Pipeline.process` runs all four. Each
step keeps its own temporal state and runs under its own lock, so frames go through
each step in order. Around this path: the stages and their swaps (:mod:`app.stages`), the harmonizer
handover (:mod:`app.handover`), failing stages and devices (:mod:`app.faults`), the sinks
(:mod:`app.fanout`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, ContextManager

import numpy as np

from app.backgrounds import Background
from app.fanout import SinkFanout
from app.sinks.base import Sink
from app.stages import Stages
from app.timing import StageTimes
from models.blending.base import Blend, Composite
from models.blending.linear import LinearBlend
from models.frame import Frame, Image, on_device
from models.harmonizers.base import Harmonizer
from models.matting.base import Matte, Matting
from models.matting.postprocess import MattePostprocess
from models.ops.device_faults import is_device_failure
from models.ops.tensor_image import alpha_array, download, upload

#: What a failing blend is replaced with for a frame.
LINEAR = LinearBlend()


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
    """The first step of a frame's work: the frame (uploaded on a device path) and the model's matte of it, at
    the size the model answers at (:meth:`~models.matting.base.Matting.coarse`); ``device`` is where it was made
    (a frame matted before a move to the CPU is matted again)."""

    frame: Frame
    matte: Matte
    upload_ms: float = 0.0
    device: str = "cpu"


@dataclass(frozen=True)
class Refined:
    """The first two steps of a frame's work: the post-processed matte, at the frame's size (the frame and the
    rest as in :class:`Matted`)."""

    frame: Frame
    matte: Matte
    upload_ms: float
    device: str


@dataclass(frozen=True)
class Composed:
    """The first three steps of a frame's work: the post-processed matte, the background and their blend (the
    frame and the rest as in :class:`Matted`)."""

    frame: Frame
    matte: Matte
    background: Image
    composite: Composite
    upload_ms: float
    device: str


class Pipeline(Stages):
    """The stages (swappable from any thread, see :class:`~app.stages.Stages`) and the frame path."""

    def __init__(self, matting: Matting, background: Background, blend: Blend, harmonizer: Harmonizer,
                 postprocess: MattePostprocess | None = None, sinks: list[Sink] | None = None,
                 device: str = "cpu", resident: bool | None = None,
                 cpu_stages: Callable[[], tuple[Matting, Blend, Harmonizer]] | None = None) -> None:
        super().__init__(matting, background, blend, harmonizer, postprocess)
        self.device = device
        #: Builds CPU replacements of the device-bound stages, for a fall-back after a device failure.
        self._cpu_stages = cpu_stages
        #: Frames live as torch tensors on ``device`` (default: on any device but the CPU, where
        #: NumPy and OpenCV are faster; tests run the tensor path on the CPU too).
        self.resident = device != "cpu" if resident is None else resident
        self.outputs = SinkFanout(sinks)
        self.times = StageTimes(device=device)

    # --- outputs ----------------------------------------------------------------------------
    @property
    def sinks(self) -> list[Sink]:
        return self.outputs.sinks

    def set_sinks(self, sinks: list[Sink]) -> None:
        self.outputs.set_sinks(sinks)

    @property
    def mirror_output(self) -> bool:
        return self.outputs.mirror

    def set_mirror_output(self, mirror: bool) -> None:
        self.outputs.mirror = mirror

    def emit(self, result: FrameResult) -> None:
        with self.times.measure("sink"):
            self.outputs.send(result.output)

    def resend(self, output: np.ndarray) -> None:
        """Send ``output`` (a result's, or a black frame) again, untimed: the keep-alive frames of a paused
        stream (see :mod:`app.idle`)."""
        self.outputs.send(output)

    def reset_stream(self) -> None:
        """A new source (or a jump in it): forget every temporal state and the timings."""
        self.times.clear()
        super().reset_stream()

    # --- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on ``frame``; the alpha always belongs to this very frame.

        A blend or harmonizer that raises is replaced for that frame by linear blending or
        by the plain composite (reported once); a device failure moves the pipeline to the CPU
        and the frame is done again there. The same holds for the four steps on their own.
        """
        device = self.device
        try:
            with self._matting_lock, self._refine_lock, self._compose_lock, self._lock:
                return self._finish(self._compose(self._refine(self._matte_frame(frame))))
        except Exception as exc:
            self._fall_back_to_cpu(exc, device)
            return self.process(frame)

    def matte_frame(self, frame: Frame) -> Matted:
        """The first step of :meth:`process`, for frame loops that overlap the steps of consecutive frames."""
        device = self.device
        try:
            with self._matting_lock:
                return self._matte_frame(frame)
        except Exception as exc:
            self._fall_back_to_cpu(exc, device)
            return self.matte_frame(frame)

    def refine(self, matted: Matted) -> Matted | Refined:
        """The second step of :meth:`process` (the matte's post-processing) for the frame :meth:`matte_frame`
        gave; a frame matted on a device that failed since comes back as it was, for :meth:`finish` to do
        again."""
        return self._step(self._refine_lock, self._refine, matted)

    def compose(self, refined: Matted | Refined) -> Matted | Refined | Composed:
        """The third step of :meth:`process` (the background, the blend) for what :meth:`refine` gave of a frame;
        as there, a frame begun on a device that failed since comes back as it was."""
        return self._step(self._compose_lock, self._compose, refined)

    def _step(self, lock: ContextManager, step: Callable[[Matted | Refined], Refined | Composed],
              done: Matted | Refined) -> Matted | Refined | Composed:
        """``step(done)`` under ``lock``, or ``done`` as it was when it was begun on a device that failed since."""
        try:
            with lock:
                if done.device == self.device:
                    return step(done)
        except Exception as exc:
            self._fall_back_to_cpu(exc, done.device)
        return done

    def finish(self, done: Matted | Refined | Composed) -> FrameResult:
        """The rest of :meth:`process` for what :meth:`matte_frame`, :meth:`refine` or :meth:`compose` gave of a
        frame."""
        if isinstance(done, Matted):
            done = self.refine(done)
        if isinstance(done, Refined):
            done = self.compose(done)
        try:
            with self._lock:
                if isinstance(done, Composed) and done.device == self.device:
                    return self._finish(done)
        except Exception as exc:
            self._fall_back_to_cpu(exc, done.device)
        return self.process(replace(done.frame, pixels=None))  # begun on a device that failed since

    def _matte_frame(self, frame: Frame) -> Matted:
        t0 = time.perf_counter()
        if self.resident:  # the one upload
            frame = Frame(frame.rgb, frame.index, frame.timestamp, upload(frame.rgb, self.device))
        upload_ms = (time.perf_counter() - t0) * 1e3
        with self.times.measure("matting"):
            return Matted(frame, self.matting.coarse(frame), upload_ms, self.device)

    def _refine(self, matted: Matted) -> Refined:
        with self.times.measure("post-processing"):
            matte = self.postprocess(matted.frame, matted.matte)
        return Refined(matted.frame, matte, matted.upload_ms, matted.device)

    def _compose(self, refined: Refined) -> Composed:
        t, frame, matte, faults = self.times, refined.frame, refined.matte, self.faults
        with t.measure("background"):
            background = self.background.at(frame, matte.alpha)
        with t.measure("blend"):
            composite = faults.guarded(
                "blend", self.blend, lambda: self.blend.blend(frame, matte, background, self.blend_state),
                lambda: LINEAR.blend(frame, matte, background, self.blend_state), "linear blending is used instead")
        return Composed(frame, matte, background, composite, refined.upload_ms, refined.device)

    def _finish(self, composed: Composed) -> FrameResult:
        t, frame, background, composite, faults = (self.times, composed.frame, composed.background,
                                                   composed.composite, self.faults)
        with t.measure("harmonize"):
            image = faults.guarded(
                "harmonizer", self.harmonizer,
                lambda: self.harmonizer.harmonize(composite, background, frame, self.harmonizer_state),
                lambda: composite.image, "the picture is shown without harmonization")
            if self._handover is not None:
                image, over = self._handover.mix(image, self.harmonizer.ready(self.harmonizer_state), composite,
                                                 background, frame)
                if over:
                    self._retire(*self._handover.closers)
                    self._handover = None
        t0 = time.perf_counter()
        output = download(image) if on_device(image) else image  # the one download
        if self.resident:
            t.add("transfer", composed.upload_ms + (time.perf_counter() - t0) * 1e3)
        return FrameResult(frame, composed.matte, background, composite, output)

    def _fall_back_to_cpu(self, exc: Exception, device: str) -> None:
        """After ``exc`` in work on ``device``: when the device failed (out of memory, a lost GPU), rebuild the
        device-bound stages on the CPU (once, whichever step saw it first); any other error is raised on."""
        if device == "cpu" or not is_device_failure(exc) or self._cpu_stages is None:
            raise exc
        with self._matting_lock, self._refine_lock, self._compose_lock, self._lock:
            if self.device == "cpu":  # another step has moved already
                return
            self._replace_device_stages(*self._cpu_stages())
            self.device, self.resident = "cpu", False
            self.times.on_host()
        self.faults.report("device", f"the GPU failed ({str(exc).splitlines()[0][:120]}); "
                                     "Harmonicam now runs on the CPU")
