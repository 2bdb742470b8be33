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

``strength`` is applied here, once, for every method: the transform is moved
from ``identity`` towards the prediction by ``strength``.
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
from models.harmonizers.parameter_tracker import ParameterTracker
from models.ops.colour_transform import apply_colour_affine, fit_colour_affine, identity_affine
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

    def __init__(self, strength: float = 1.0, device: str = "cpu", rate_hz: float = 10.0,
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

    # --- the machinery ----------------------------------------------------------------------------
    def _tracker(self, state: StreamState) -> ParameterTracker:
        tracker = state.data.get("tracker")
        if tracker is None:
            def predict(job: tuple[SmallInputs, Any]) -> np.ndarray:
                inputs, ready = job
                side = self._cuda_stream
                with contextlib.nullcontext() if side is None else torch.cuda.stream(side):
                    if side is not None:
                        side.wait_event(ready)  # the small copies were made on the frame loop's stream
                    return self.predict(inputs, state.data.setdefault("cache", {}))

            tracker = ParameterTracker(predict, self.rate_hz, self.tau_s, live=state.live)
            state.data["tracker"] = tracker
            state.closers.append(tracker.close)
        return tracker

    def _small_inputs(self, composite: Composite, background: Image, state: StreamState) -> SmallInputs:
        bg_small = None
        if self.uses_background:
            held = state.data.get("background")
            # Image and colour backgrounds hand over the same object while unchanged: shrink once.
            if held is None or held[0] is not background:
                held = (background, shrink(background, self.input_size))
                state.data["background"] = held
            bg_small = held[1]
        return SmallInputs(shrink(composite.image, self.input_size), shrink(composite.alpha, self.input_size),
                           bg_small)

    def harmonize(self, composite: Composite, background: Image, frame: Frame, state: StreamState) -> Image:
        if self.strength == 0:
            return composite.image
        tracker = self._tracker(state)
        if tracker.due(frame.timestamp):
            ready = None
            if self._cuda_stream is not None:
                ready = torch.cuda.Event()
                ready.record()
            tracker.submit((self._small_inputs(composite, background, state), ready), frame.timestamp)
        transform = tracker.current()
        if transform is None:
            return composite.image
        identity = self.identity
        transform = identity + np.float32(self.strength) * (transform - identity)
        return self.apply(composite, transform, state.data.setdefault("apply", {}))

    def ready(self, state: StreamState) -> bool:
        tracker = state.data.get("tracker")
        return self.strength == 0 or (tracker is not None and tracker.current() is not None)

    def background_changed(self, state: StreamState) -> None:
        state.data["cache"] = {}
        state.data.pop("background", None)

    def current_transform(self, state: StreamState) -> np.ndarray | None:
        """The smoothed transform of a stream (before ``strength``), or None before the first prediction."""
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
