"""A harmonizer switch: the old look eases into the new one.

The outgoing harmonizer keeps running beside the new one until the new one has
its look (a prediction may take a while), then its picture fades out over
:data:`FADE_S` of media time. A new harmonizer that has no look after
:data:`FADE_GIVE_UP_S` is shown as it is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from models.blending.base import Composite
from models.frame import Frame, Image
from models.harmonizers.base import Harmonizer
from models.ops.crossfade import crossfade
from models.stream import StreamState

log = logging.getLogger(__name__)

#: How long the old harmonizer's look takes to hand over to the new one, in media seconds.
FADE_S = 0.5
#: A new harmonizer that has no look after this long is shown as it is (the old one is dropped).
FADE_GIVE_UP_S = 5.0


@dataclass
class Handover:
    """The outgoing harmonizer and its per-stream state, until its look has faded out."""

    harmonizer: Harmonizer
    state: StreamState
    started: float | None = None    # media time the new look appeared
    requested: float | None = None  # media time of the first frame after the switch

    @property
    def closers(self) -> list[Callable[[], None]]:
        return [self.state.close, self.harmonizer.close]

    def mix(self, image: Image, new_ready: bool, composite: Composite, background: Image,
            frame: Frame) -> tuple[Image, bool]:
        """The frame's picture (``image``: the new harmonizer's) with the old look mixed in, and whether the
        handover is over (the old harmonizer may then be closed)."""
        now = frame.timestamp
        self.requested = now if self.requested is None else self.requested
        if self.started is None and new_ready:
            self.started = now
        waited = now - self.requested
        weight = 0.0 if self.started is None else (now - self.started) / FADE_S
        if weight >= 1 or waited < 0 or waited > FADE_GIVE_UP_S:
            return image, True
        try:
            old = self.harmonizer.harmonize(composite, background, frame, self.state)
        except Exception:  # the outgoing method failing must not cost the frame
            log.warning("the previous harmonizer failed while fading out", exc_info=True)
            return image, True
        return crossfade(old, image, weight), False
