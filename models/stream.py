"""Per-stream state of a stage: what one video stream has accumulated in a model.

A model instance (weights, runtime) can serve several streams over its life
(a new source, a rewind, a switch between live and file rendering); whatever
belongs to one stream — smoothed parameters, cached background statistics,
prediction workers — lives in a ``StreamState`` that the pipeline creates and
closes, never on the shared model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class StreamState:
    #: Live streams (cameras, real-time outputs) must never wait for slow work;
    #: file-to-file streams must render deterministically.
    live: bool = True
    data: dict[str, Any] = field(default_factory=dict)
    #: Called by ``close``, newest first: stop workers, release buffers.
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Run every closer once, even when one of them raises; re-raise the first error."""
        closers, self.closers = self.closers[::-1], []
        first: BaseException | None = None
        for closer in closers:
            try:
                closer()
            except BaseException as exc:  # the others must still run
                first = first or exc
        self.data.clear()
        if first is not None:
            raise first
