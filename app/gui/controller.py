"""The window's side of the stream: the window talks only to this, and this drives one :class:`~app.stream.Stream`.

The stream controller (:mod:`app.stream`) owns the source, the pipeline and the
frame loop, as for every front end; here are only what the window adds: the
settings, the virtual camera the user starts and stops, and Qt signals. Slow work
(building models, opening sources and files) runs one job at a time on a loader
thread, so the window never freezes and changes land in the order they were
made. What a job leaves for the UI thread, and everything the pipeline and
camera threads report, goes through a queue that a timer drains.
"""
from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from app.assemble import StageChoice, make_blend, make_harmonizer, make_matting, resolve_device
from app.backgrounds import parse_background
from app.commands.devices import cameras
from app.errors import HarmonicamError, RuntimeFailure, UsageError
from app.gui.settings import Settings, device_problem
from app.imaging import cover_fit
from app.pipeline import Pipeline
from app.sinks.base import Sink
from app.sinks.virtual_camera import VirtualCameraSink
from app.sources import open_source
from app.sources.base import Source
from app.stream import Stream, build_pipeline

log = logging.getLogger(__name__)

SAMPLE = "sample"


class VirtualCameraOutput(Sink):
    """The window's virtual camera inside the pipeline's sink list.

    The window opens and closes the camera (start/stop button), so the
    open/close that the frame loop does at every source restart are no-ops.
    Frames of another size (after a resolution change) are cover-fit to the
    size the camera was opened with: apps reading it cannot follow a change.
    """

    realtime = True

    def __init__(self, sink: VirtualCameraSink, size: tuple[int, int], fps: float) -> None:
        self.sink = sink
        self.size = size
        self.fps = fps
        self.description = sink.description
        #: Set when sending failed (device removed); the controller then stops the camera.
        self.error: Exception | None = None

    def open(self, size, fps):
        pass

    def send(self, rgb):
        if self.error is not None:
            return
        try:
            self.sink.send(cover_fit(rgb, self.size))
        except Exception as exc:  # a vanished device must not stop the preview
            self.error = exc

    def readers(self):
        return None if self.error is not None else self.sink.readers()

    def close(self, success=True):
        pass


class Controller(QObject):
    #: The newest FrameResult, at most one per poll.
    frame_ready = pyqtSignal(object)
    #: A sentence for the user (lower-case start, no full stop, like the app's errors) and whether it
    #: reports a problem.
    message = pyqtSignal(str, bool)
    #: A change took effect: "pipeline", "source", "cameras", "matting", "blend", "harmonizer", "background",
    #: "device".
    applied = pyqtSignal(str)
    #: A change failed (what, sentence); the previous choice keeps running.
    failed = pyqtSignal(str, str)
    #: The virtual camera stopped by itself (sentence).
    vcam_lost = pyqtSignal(str)
    #: The camera was lost (True) or is back (False), with CameraSource's sentence.
    camera_status = pyqtSignal(str, bool)

    POLL_MS = 15

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        #: The device the pipeline runs on ("cpu" or "cuda"; settings.device may be "auto").
        self.device = self._saved_device(settings.device)[0]
        self.stream: Stream | None = None
        self.vcam: VirtualCameraOutput | None = None
        self.cameras: list[tuple[str, str]] = []
        #: Whether the user works in the window (one of its windows is active): its preview then needs
        #: frames even while no app reads the virtual camera. Set by the window.
        self.window_active = False
        #: The spec of the source that runs (settings.source is the one to try at the next start).
        self.source_spec = ""
        # What runs, as the loader thread knows it: a job can run before the UI thread has stored the
        # previous job's change in the settings, so a rebuild reads these, never the settings' stage names.
        self._choice = settings.stage_choice(self.device)
        self._background_spec = settings.background
        self._source_args: tuple[str, tuple[int, int], float] | None = None  # (spec, size, fps) of the source
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loader")
        self._closed = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._timer.start(self.POLL_MS)

    # --- plumbing --------------------------------------------------------------------------------
    def _post(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the UI thread at the next poll (callable from any thread)."""
        self._calls.put(call)

    def _submit(self, what: str, job: Callable[[], Callable[[], None] | None]) -> None:
        """Run ``job`` on the loader thread; the function it returns runs on the UI thread, then
        ``applied(what)``. An error becomes ``failed(what, sentence)``."""

        def run() -> None:
            try:
                done = job()
            except HarmonicamError as exc:
                text = str(exc)
            except Exception as exc:  # a model's own bug must not take the window down
                log.exception("%s failed", what)
                text = f"{what} could not be changed: {exc}"
            else:
                self._post(lambda: self._finish(what, done))
                return
            self._post(lambda: self.failed.emit(what, text))

        self._loader.submit(run)

    def _finish(self, what: str, done: Callable[[], None] | None) -> None:
        if done is not None:
            done()
        self.applied.emit(what)

    def _poll(self) -> None:
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            call()
        stream = self.stream
        result = stream.take() if stream is not None else None
        if result is not None:
            self.frame_ready.emit(result)
        if self.pipeline is not None:  # a stage that failed and was replaced while running
            for text in self.pipeline.take_faults():
                self.message.emit(text, True)
        if self.vcam is not None and self.vcam.error is not None:
            error = self.vcam.error
            self.stop_vcam()
            self.vcam_lost.emit(f"the virtual camera stopped: {error}")

    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeFailure("the video pipeline did not start; restart Harmonicam")
        return self.pipeline

    @property
    def ready(self) -> bool:
        return self.stream is not None

    @property
    def pipeline(self) -> Pipeline | None:
        return self.stream.pipeline if self.stream is not None else None

    @property
    def source(self) -> Source | None:
        return self.stream.source if self.stream is not None else None

    # --- start and sources -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the saved source (or the sample clip) and build the pipeline, off the UI thread."""
        self._submit("pipeline", self._start_job)

    def _start_job(self) -> Callable[[], None]:
        s = self.settings
        self.cameras = cameras()
        self.device, device_note = self._saved_device(s.device)
        spec, source, note = self._initial_source(s)
        note = note or f"now showing: {source.description}"
        problem = None
        try:
            pipeline, fallback = self._build(s, source), None
        except HarmonicamError as exc:
            fallback = Settings()
            try:
                pipeline = self._build(fallback, source)
            except BaseException:
                source.close()
                raise
            problem = f"your model or background choice could not be restored ({exc}); the defaults are used"
        used = fallback or s
        self._choice, self._background_spec = used.stage_choice(self.device), used.background
        self.stream = Stream(source, pipeline)
        self._started(spec, source, s.resolution, s.fps)
        self.stream.start(*self._loop_args(source, s.fps))

        def done() -> None:
            if fallback is not None:
                for name in ("matting", "matting_model", "blend", "harmonizer", "harmonizer_weights",
                             "background"):
                    setattr(s, name, getattr(fallback, name))
            if device_note is not None:
                s.device = "auto"
            self.applied.emit("cameras")
            for text, error in ((note, False), (device_note, True), (problem, True)):
                if text:
                    self.message.emit(text, error)

        return done

    @staticmethod
    def _saved_device(name: str) -> tuple[str, str | None]:
        """The device to run the saved choice on, and a sentence when that choice cannot run here."""
        try:
            return resolve_device(name), None
        except UsageError:
            why = device_problem(name) or f"{name!r} is not a device"
            return resolve_device("auto"), f"the saved device cannot be used ({why}); the CPU is used"

    def _build(self, s: Settings, source: Source) -> Pipeline:
        pipeline = build_pipeline(s.stage_choice(self.device), s.background, [], frame_locked=not source.live)
        pipeline.set_mirror_output(s.mirror_output)
        return pipeline

    def _initial_source(self, s: Settings) -> tuple[str, Source, str | None]:
        """The saved source, else the first camera, else the sample clip; and what to tell the user."""
        spec = s.source or (self.cameras[0][0] if self.cameras else SAMPLE)
        if spec != SAMPLE:
            try:
                return spec, self._open(spec, s.resolution, s.fps), None
            except HarmonicamError as exc:  # kept in the settings: tried again at the next start
                return SAMPLE, self._open(SAMPLE, s.resolution, s.fps), f"{exc}; showing the built-in sample clip"
        note = None if s.source == SAMPLE else "no camera found: showing the built-in sample clip"
        return SAMPLE, self._open(SAMPLE, s.resolution, s.fps), note

    def _open(self, spec: str, size: tuple[int, int], fps: float) -> Source:
        def on_status(text: str) -> None:  # capture thread; ``source`` exists by the first call
            lost = source.status == "lost"
            self._post(lambda: self.camera_status.emit(text, lost))

        # The window's resolution is a preference: a camera that cannot deliver it is scaled.
        source = open_source(spec, size, fps, loop=True, image_frames=None, on_status=on_status,
                             strict_size=False)
        return source

    def _started(self, spec: str, source: Source, size: tuple[int, int], fps: float) -> None:
        """``source`` (opened from ``spec`` at ``size`` and ``fps``) is the one that runs."""
        self.source_spec = spec
        self._source_args = (spec, size, fps)

    def _loop_args(self, source: Source, fps: float):
        """The stream's loop arguments (fps cap, end callback, always-on): files play at their own rate; a
        camera is capped at the chosen frame rate (which it may not honour)."""
        return fps if source.live else source.fps, self._on_end, self._keep_working

    def _on_end(self, error: BaseException | None) -> None:  # the pipeline thread
        self._post(lambda: self._stream_ended(error))

    def _keep_working(self) -> bool:
        """Asked by the pipeline thread before each frame: False lets it pause while no app reads the virtual
        camera (see app.idle)."""
        return self.settings.vcam_always_on or self.window_active

    def _stream_ended(self, error: BaseException | None) -> None:
        if self.stream is not None and not self.stream.alive:  # not restarted meanwhile
            why = f": {error}" if error is not None else ""
            self.message.emit(f"the video stopped{why}; pick a source to start it again", True)

    def rescan_cameras(self) -> None:
        def job() -> None:
            self.cameras = cameras()

        self._submit("cameras", job)

    def set_source(self, spec: str, size: tuple[int, int], fps: float) -> None:
        """Switch to another source (a fresh stream on the same pipeline); the old one runs until then."""

        def job() -> Callable[[], None]:
            self._pipeline()
            source = self._open(spec, size, fps)
            self.stream.set_source(source, *self._loop_args(source, fps))
            self._started(spec, source, size, fps)

            def done() -> None:
                s = self.settings
                s.source, s.resolution, s.fps = spec, size, fps

            return done

        self._submit("source", job)

    # --- stages ----------------------------------------------------------------------------------
    def set_background(self, spec: str) -> None:
        def job() -> Callable[[], None]:
            source = self.source
            self._pipeline().set_background(parse_background(spec, frame_locked=not (source and source.live)))
            self._background_spec = spec
            return lambda: setattr(self.settings, "background", spec)

        self._submit("background", job)

    def set_matting(self, name: str, model_path: str | None) -> None:
        def job() -> Callable[[], None]:
            choice = StageChoice(matting=name, matting_model=model_path, device=self.device)
            self._pipeline().set_matting(make_matting(choice))
            self._choice = replace(self._choice, matting=name, matting_model=model_path)

            def done() -> None:
                self.settings.matting, self.settings.matting_model = name, model_path

            return done

        self._submit("matting", job)

    def set_blend(self, name: str) -> None:
        def job() -> Callable[[], None]:
            self._pipeline().set_blend(make_blend(StageChoice(blend=name, device=self.device)))
            self._choice = replace(self._choice, blend=name)
            return lambda: setattr(self.settings, "blend", name)

        self._submit("blend", job)

    def set_harmonizer(self, name: str, weights: str | None) -> None:
        def job() -> Callable[[], None]:
            choice = StageChoice(harmonizer=name, harmonizer_weights=weights, strength=self.settings.strength,
                                 keep_bright=self.settings.keep_bright, device=self.device)
            self._pipeline().set_harmonizer(make_harmonizer(choice))
            self._choice = replace(self._choice, harmonizer=name, harmonizer_weights=weights)

            def done() -> None:
                self.settings.harmonizer, self.settings.harmonizer_weights = name, weights
                self.pipeline.set_strength(self.settings.strength)  # moved while it loaded
                self.pipeline.set_keep_bright(self.settings.keep_bright)

            return done

        self._submit("harmonizer", job)

    def set_device(self, name: str) -> None:
        """Rebuild the whole pipeline on ``name`` ("auto", "cpu" or "cuda") for the source that runs.

        The old pipeline runs until the new one is built (a failure leaves it running); then the
        capture is stopped, the source opened again with the same spec, size and rate (a camera
        cannot be opened twice), the virtual camera moved over and the old pipeline closed.
        """

        def job() -> Callable[[], None]:
            s = self.settings
            try:
                device = resolve_device(name)
            except UsageError:
                why = device_problem(name) or f"{name!r} is not a device"
                raise RuntimeFailure(f"the pipeline stays on {self.device.upper()}: {why}") from None
            stream, args = self.stream, self._source_args
            if stream is None or args is None:
                raise RuntimeFailure("the video is still starting; change the device in a moment")
            # Instant settings as they are now; done() applies any that moved during the build.
            choice = replace(self._choice, device=device, strength=s.strength, keep_bright=s.keep_bright,
                             matte=replace(self._choice.matte, smoothing_s=s.smoothing_s, refine=s.refine))
            pipeline = build_pipeline(choice, self._background_spec, [], frame_locked=not stream.source.live)
            pipeline.set_mirror_output(s.mirror_output)
            try:  # the capture stops and the source is opened again (a camera cannot be opened twice)
                stream.set_pipeline(pipeline, lambda: self._open(*args), *self._loop_args(stream.source, args[2]))
            except Exception as exc:
                raise self._source_lost(exc) from exc
            self.device, self._choice = device, choice

            def done() -> None:
                s.device = name
                self.set_strength(s.strength)
                self.set_keep_bright(s.keep_bright)
                self.set_mirror_output(s.mirror_output)
                if (s.smoothing_s, s.refine) != (choice.matte.smoothing_s, choice.matte.refine):
                    self.set_matte_options(s.smoothing_s, s.refine)

            return done

        self._submit("device", job)

    def _source_lost(self, exc: BaseException) -> HarmonicamError:
        """The source did not open again after a device switch: the old pipeline shows the sample clip; the
        error to report."""
        size, fps = self._source_args[1:]
        try:
            source = self._open(SAMPLE, size, fps)
            self.stream.set_source(source, *self._loop_args(source, fps))
            self._started(SAMPLE, source, size, fps)
        except HarmonicamError as sample_exc:
            return RuntimeFailure(f"the device was not changed and the video stopped: {exc} ({sample_exc}); "
                                  "pick a source to start it again")
        return RuntimeFailure(f"the device was not changed: {exc}; showing the built-in sample clip")

    def set_strength(self, strength: float) -> None:
        self.settings.strength = strength
        if self.pipeline is not None:
            self.pipeline.set_strength(strength)

    def set_keep_bright(self, keep_bright: bool) -> None:
        self.settings.keep_bright = keep_bright
        if self.pipeline is not None:
            self.pipeline.set_keep_bright(keep_bright)

    def set_matte_options(self, smoothing_s: float, refine: bool) -> None:
        self.settings.smoothing_s, self.settings.refine = smoothing_s, refine
        if self.pipeline is not None:
            options = replace(self.pipeline.postprocess.options, smoothing_s=smoothing_s, refine=refine)
            self.pipeline.set_matte_options(options)

    def set_vcam_always_on(self, on: bool) -> None:
        """Keep working while no app reads the virtual camera (the pipeline thread asks at each frame)."""
        self.settings.vcam_always_on = on

    def set_mirror_output(self, mirror: bool) -> None:
        self.settings.mirror_output = mirror
        if self.pipeline is not None:
            self.pipeline.set_mirror_output(mirror)

    # --- virtual camera --------------------------------------------------------------------------
    def start_vcam(self, backend: str | None, device: str | None) -> VirtualCameraOutput:
        """Open the virtual camera at the source's size; raises VirtualCameraError (with the fix)."""
        if not self.ready:
            raise RuntimeFailure("the video is still starting; start the virtual camera in a moment")
        size = self.source.size
        sink = VirtualCameraSink(backend, device)
        sink.open(size, self.settings.fps)
        vcam = VirtualCameraOutput(sink, size, self.settings.fps)
        self.vcam = vcam
        self.stream.set_sinks([vcam])
        return vcam

    def stop_vcam(self) -> None:
        if self.vcam is None:
            return
        vcam, self.vcam = self.vcam, None
        self.stream.set_sinks([])  # no frame is sent after this returns
        vcam.sink.close()

    # --- end -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the virtual camera, the capture and the pipeline; joins every thread."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self._loader.shutdown(wait=True, cancel_futures=True)
        self.stop_vcam()
        if self.stream is not None:
            self.stream.close()
