"""The pipeline's stages and their per-stream states, swapped from any thread while frames run.

Any stage can be swapped through the ``set_*`` methods (the narrow API the
stream controller, the window and the CLI use). A frame's work comes in four
steps (:mod:`app.pipeline`), each under its own lock: the matting model's, the
matte's post-processing's, the composing one's (background, blend) and the
harmonizer's. A swap takes the lock of the step its stage belongs to, so it lands
between two frames; where several locks are taken, they are taken in that order.
Nothing that can wait on a worker thread (closing a stage, stopping a prediction
worker) ever runs under a lock: it is handed to a closer thread. A harmonizer
switch eases from the old look to the new one (:mod:`app.handover`); a background
switch keeps the harmonizer's smoothing, so the look eases to the new scene.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from app.backgrounds import Background
from app.closing import close_all
from app.faults import Faults
from app.handover import Handover
from models.blending.base import Blend
from models.harmonizers.base import Harmonizer
from models.matting.base import Matting
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.stream import StreamState


class Stages:
    """One of each stage, the per-stream states, and the swaps between frames."""

    def __init__(self, matting: Matting, background: Background, blend: Blend, harmonizer: Harmonizer,
                 postprocess: MattePostprocess | None = None) -> None:
        self.matting = matting
        self.background = background
        self.blend = blend
        self.harmonizer = harmonizer
        self.postprocess = postprocess or MattePostprocess()
        self.faults = Faults()
        self._live = True
        self.matting.live = self.postprocess.live = self._live
        self.blend_state = StreamState(live=True)
        self.harmonizer_state = StreamState(live=True)
        self._handover: Handover | None = None
        self._matting_lock = threading.RLock()  # the matting model (the first step of a frame)
        self._refine_lock = threading.RLock()  # the matte's post-processing
        self._compose_lock = threading.RLock()  # the background, the blend
        self._lock = threading.RLock()  # the harmonizer (the last step)
        # Closing can wait for workers: it never happens under the lock, always here.
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-closer")

    def _retire(self, *closers: Callable[[], None]) -> None:
        try:
            self._closer.submit(close_all, closers, "a replaced stage")
        except RuntimeError:  # closed already: nothing runs frames any more
            close_all(closers, "a replaced stage")

    # --- swaps (thread-safe; take effect at the next frame) -------------------------------
    def set_matting(self, matting: Matting) -> None:
        with self._matting_lock, self._refine_lock:
            old, self.matting = self.matting, matting
            matting.live = self._live
            self.postprocess.reset()
        self._retire(old.close)

    def set_background(self, background: Background) -> None:
        with self._compose_lock, self._lock:
            old, self.background = self.background, background
            self.harmonizer.background_changed(self.harmonizer_state)
            if self._handover is not None:
                self._handover.harmonizer.background_changed(self._handover.state)
        self._retire(old.close)

    def set_matte_options(self, options: MatteOptions) -> None:
        with self._refine_lock:
            old, self.postprocess = self.postprocess, MattePostprocess(options, live=self._live)
        self._retire(old.close)

    def set_blend(self, blend: Blend) -> None:
        with self._compose_lock:
            old, old_state = self.blend, self.blend_state
            self.blend, self.blend_state = blend, StreamState(live=self._live)
            self.faults.forget("blend")
        self._retire(old_state.close, old.close)

    def set_harmonizer(self, harmonizer: Harmonizer) -> None:
        """Swap the harmonizer; the old one keeps running until the new one has its look, then fades out."""
        with self._lock:
            retired = self._handover
            self._handover = Handover(self.harmonizer, self.harmonizer_state)
            self.harmonizer, self.harmonizer_state = harmonizer, StreamState(live=self._live)
            self.faults.forget("harmonizer")
        if retired is not None:
            self._retire(*retired.closers)

    def set_strength(self, strength: float) -> None:
        """Harmonization strength 0…1; the shared machinery applies it from the next frame."""
        self.harmonizer.strength = strength

    def set_keep_bright(self, keep_bright: bool) -> None:
        """Whether the person may be darkened or flattened only as far as the background justifies; the shared
        machinery measures it from the next prediction and eases to it."""
        self.harmonizer.keep_bright = keep_bright

    def reset_stream(self) -> None:
        """A new source (or a jump in it): forget every temporal state."""
        with self._matting_lock, self._refine_lock, self._compose_lock, self._lock:
            self.matting.reset()
            self.postprocess.reset()
            retired = self._new_states()
        self._retire(*retired)

    @property
    def live(self) -> bool:
        """Whether frames come in real time (harmonizers may then predict asynchronously)."""
        return self._live

    @live.setter
    def live(self, value: bool) -> None:
        with self._matting_lock, self._refine_lock, self._compose_lock, self._lock:
            if value == self._live:
                return
            self._live = value
            self.matting.live = self.postprocess.live = value
            retired = self._new_states()
        self._retire(*retired)

    def _new_states(self) -> list[Callable[[], None]]:
        """Fresh per-stream states (under the lock); returns the closers of the old ones."""
        old = [self.blend_state.close, self.harmonizer_state.close]
        if self._handover is not None:
            old += self._handover.closers
            self._handover = None
        self.blend_state = StreamState(live=self._live)
        self.harmonizer_state = StreamState(live=self._live)
        return old

    def take_faults(self) -> list[str]:
        """Sentences about stages that failed and were replaced since the last call (for the window)."""
        return self.faults.take()

    def _replace_device_stages(self, matting: Matting, blend: Blend, harmonizer: Harmonizer) -> None:
        """Put CPU replacements in place of the device-bound stages (under every lock), with fresh states."""
        retired = [self.matting.close, self.blend.close, self.harmonizer.close, *self._new_states()]
        self.matting, self.blend, self.harmonizer = matting, blend, harmonizer
        matting.live = self._live
        self.postprocess.reset()
        self.background.reset_device_cache()
        self._retire(*retired)

    def close(self) -> None:
        """Close every stage and state, even when one of them fails; waits for retired stages."""
        with self._matting_lock, self._refine_lock, self._compose_lock, self._lock:
            closers = [*self._new_states(), self.harmonizer.close, self.blend.close, self.matting.close,
                       self.postprocess.close, self.background.close]
        self._closer.shutdown(wait=True)
        close_all(closers, "the pipeline")
