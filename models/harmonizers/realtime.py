"""The real-time machinery every learned harmonizer runs through.

predict small → compact transform → smooth over time → apply at full resolution.

A harmonization network is too slow for every frame of a CPU and its output
changes slowly, so a subclass only says how to *predict* a transform from a
small copy of the composite (``predict``, on a worker thread for live streams,
synchronously for files so they render deterministically) and how to *apply*
a transform to a full-resolution frame (``apply``). The transform is a short
vector — filter arguments, a fitted colour map, background statistics — that
:class:`~models.harmonizers.parameter_tracker.ParameterTracker` smooths with a
time constant in seconds. Applying the smoothed transform to the current frame
means a person who moves between predictions is never pasted with a stale image.

``keep_bright`` is applied here for every method: each prediction is measured on
the small copy it was made from, and where it would darken or flatten the person
more than the background justifies a lift is appended to the transform
(:mod:`models.harmonizers.keep_bright`); it is smoothed with the transform and
applied after it.

``strength`` is applied here, once, for every method: the transform and its lift
are moved from their identity towards the prediction by ``strength``
(:func:`toward`).
"""
from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.blending.base import Composite
from models.frame import Frame, Image, on_device
from models.harmonizers.base import Harmonizer
from models.harmonizers.keep_bright import NO_LIFT, changes_pixels, lift_affine, lift_for, luma_stats, mean_luma
from models.harmonizers.parameter_tracker import ParameterTracker
from models.ops.colour_transform import apply_colour_affine, compose_affine, fit_colour_affine, identity_affine
from models.stream import StreamState


@dataclass(frozen=True)
class SmallInputs:
    """What a prediction sees: small copies that may cross threads.

    Host path: ``composite`` uint8 S×S×3, ``mask`` float32 S×S, ``background`` uint8
    S×S×3 or None. Device path: float32 1×3×S×S, 1×1×S×S, 1×3×S×S tensors.
    ``background`` is the *complete* background; the same object while it is unchanged,
    so per-background results can be cached on its identity.
    """

    composite: Image
    mask: Image
    background: Image | None


#: Predictions per second of media time. The transform is smoothed with a time constant of ``tau_s`` (1 s by
#: default), so five predictions per time constant follow any change of scene the smoothing lets through; a
#: prediction costs about 30 ms of CPU on a 2-core laptop CPU (256² network and the keep-bright measure), which
#: at 10 a second was a third of the whole frame's CPU time at 1280×720 (issue "Speed on a laptop CPU").
PREDICTION_RATE_HZ = 5.0

#: One prediction request: the small inputs, the small complete background when the lift is measured
#: (keep-bright on; else None), and the CUDA event after which the small copies exist (None off CUDA).
Job = tuple[SmallInputs, Image | None, Any]


def toward(identity: np.ndarray, value: np.ndarray, strength: float) -> np.ndarray:
    """``identity + strength·(value − identity)``: a transform at ``strength`` (0 = identity, 1 = ``value``)."""
    return identity + np.float32(strength) * (value - identity)


def shrink(image: Image, size: int) -> Image:
    """A size×size copy, bilinear without antialiasing (the official Harmonizer's resize)."""
    if on_device(image):
        return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def network_input(image: Image, device: str | torch.device) -> torch.Tensor:
    """A 1×C×H×W float tensor in [0,1] on ``device``, from a small host array or a device tensor."""
    if on_device(image):
        return image.to(device)
    if not image.flags.writeable:  # cached backgrounds are read-only; torch wants writable memory (a 256² copy)
        image = image.copy()
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    t = t.permute(2, 0, 1) if t.ndim == 3 else t[None]
    return t[None].float().div_(255 if image.dtype == np.uint8 else 1)


class TransformHarmonizer(Harmonizer):
    """A harmonizer that predicts a transform vector at ``rate_hz`` and smooths it with ``tau_s``."""

    #: Side of the square copy the prediction sees.
    input_size: int = 256
    #: Whether ``predict`` reads the complete background.
    uses_background: bool = False

    def __init__(self, strength: float = 1.0, device: str = "cpu", rate_hz: float = PREDICTION_RATE_HZ,
                 tau_s: float = 1.0, runtime: str = "torch") -> None:
        super().__init__(strength, device, runtime)
        self.rate_hz, self.tau_s = rate_hz, tau_s
        # The predictor gets its own CUDA stream so it never queues behind the frame loop.
        self._cuda_stream = torch.cuda.Stream() if torch.device(device).type == "cuda" else None

    # --- what a method defines ------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def identity(self) -> np.ndarray:
        """The transform that changes nothing (strength 0)."""

    @abc.abstractmethod
    def predict(self, inputs: SmallInputs, cache: dict[str, Any]) -> np.ndarray:
        """The transform for one set of small inputs. ``cache`` is the stream's: keep per-background
        results there (it is emptied when the background changes)."""

    @abc.abstractmethod
    def apply(self, composite: Composite, transform: np.ndarray, stream: dict[str, Any]) -> Image:
        """``composite.image`` with ``transform`` applied inside ``composite.alpha``; ``stream`` is a dict
        for per-stream scratch (lookup tables, buffers) that lives as long as the stream."""

    def apply_lifted(self, composite: Composite, transform: np.ndarray, lift: np.ndarray,
                     stream: dict[str, Any]) -> Image:
        """``apply``, then the keep-bright ``lift`` as a colour map inside α, only where it changes pixels
        (at a soft edge the lift is weighted by α twice: ``apply`` blended by it already)."""
        image = self.apply(composite, transform, stream)
        if not changes_pixels(lift):
            return image
        return apply_colour_affine(image, composite.alpha, lift_affine(lift))

    # --- the machinery ----------------------------------------------------------------------------
    def _tracker(self, state: StreamState) -> ParameterTracker:
        tracker = state.data.get("tracker")
        if tracker is None:
            def predict(job: Job) -> np.ndarray:
                inputs, background, ready = job
                side = self._cuda_stream
                with contextlib.nullcontext() if side is None else torch.cuda.stream(side):
                    if side is not None:
                        side.wait_event(ready)  # the small copies were made on the frame loop's stream
                    transform = self.predict(inputs, state.data.setdefault("cache", {}))
                    lift = NO_LIFT if background is None else self._lift(
                        inputs, background, transform, state.data.setdefault("measure", {}))
                    return np.concatenate([transform, lift])

            tracker = ParameterTracker(predict, self.rate_hz, self.tau_s, live=state.live)
            state.data["tracker"] = tracker
            state.closers.append(tracker.close)
        return tracker

    def _lift(self, inputs: SmallInputs, background: Image, transform: np.ndarray,
              scratch: dict[str, Any]) -> np.ndarray:
        """The keep-bright lift of ``transform``: its effect on the person's luma measured by applying it to the
        small copy (``scratch``: the predictor's own apply scratch), against the background's mean luma."""
        after = self.apply(Composite(inputs.composite, inputs.mask, inputs.composite), transform, scratch)
        return lift_for(luma_stats(inputs.composite, inputs.mask), luma_stats(after, inputs.mask),
                        mean_luma(background))

    def _small_background(self, background: Image, state: StreamState) -> Image:
        """The square small copy of the complete background, kept in the stream while it is the same object."""
        held = state.data.get("background")
        # Image and colour backgrounds hand over the same object while unchanged: shrink once.
        if held is None or held[0] is not background:
            held = (background, shrink(background, self.input_size))
            state.data["background"] = held
        return held[1]

    def _small_inputs(self, composite: Composite, background: Image, state: StreamState) -> SmallInputs:
        return SmallInputs(shrink(composite.image, self.input_size), shrink(composite.alpha, self.input_size),
                           self._small_background(background, state) if self.uses_background else None)

    def harmonize(self, composite: Composite, background: Image, frame: Frame, state: StreamState) -> Image:
        if self.strength == 0:
            return composite.image
        tracker = self._tracker(state)
        if tracker.due(frame.timestamp):
            inputs = self._small_inputs(composite, background, state)
            bg_small = self._small_background(background, state) if self.keep_bright else None
            ready = None
            if self._cuda_stream is not None:  # recorded after the small copies, which the predictor waits for
                ready = torch.cuda.Event()
                ready.record()
            tracker.submit((inputs, bg_small, ready), frame.timestamp)
        current = tracker.current()
        if current is None:
            return composite.image
        current = toward(np.concatenate([self.identity, NO_LIFT]), current, self.strength)
        return self.apply_lifted(composite, current[:-len(NO_LIFT)], current[-len(NO_LIFT):],
                                 state.data.setdefault("apply", {}))

    def ready(self, state: StreamState) -> bool:
        tracker = state.data.get("tracker")
        return self.strength == 0 or (tracker is not None and tracker.current() is not None)

    def background_changed(self, state: StreamState) -> None:
        state.data["cache"] = {}
        state.data.pop("background", None)

    def current_transform(self, state: StreamState) -> np.ndarray | None:
        """The smoothed transform of a stream (before ``strength``), or None before the first prediction."""
        current = self._current(state)
        return None if current is None else current[:-len(NO_LIFT)]

    def current_lift(self, state: StreamState) -> np.ndarray | None:
        """The smoothed keep-bright lift (c, d) of a stream (before ``strength``), or None before the first
        prediction."""
        current = self._current(state)
        return None if current is None else current[-len(NO_LIFT):]

    def _current(self, state: StreamState) -> np.ndarray | None:
        tracker = state.data.get("tracker")
        return None if tracker is None else tracker.current()


class ImageToImageHarmonizer(TransformHarmonizer):
    """A network that outputs a harmonized image, carried to full resolution as a fitted colour map.

    The small output is compared with the small input inside the mask and a 3×4
    affine colour map is fitted by ridge regression towards the identity
    (:func:`~models.ops.colour_transform.fit_colour_affine`); that map is what is
    smoothed and applied to every frame.
    """

    @property
    def identity(self) -> np.ndarray:
        return identity_affine()

    @abc.abstractmethod
    def predict_image(self, inputs: SmallInputs, cache: dict[str, Any]) -> Image:
        """The harmonized small composite (same representation as ``inputs.composite``)."""

    def predict(self, inputs: SmallInputs, cache: dict[str, Any]) -> np.ndarray:
        return fit_colour_affine(inputs.composite, self.predict_image(inputs, cache), inputs.mask)

    def apply(self, composite: Composite, transform: np.ndarray, stream: dict[str, Any]) -> Image:
        return apply_colour_affine(composite.image, composite.alpha, transform)

    def apply_lifted(self, composite: Composite, transform: np.ndarray, lift: np.ndarray,
                     stream: dict[str, Any]) -> Image:
        """The lift composed into the colour map (:func:`~models.ops.colour_transform.compose_affine`): one pass."""
        return self.apply(composite, compose_affine(lift_affine(lift), transform), stream)
