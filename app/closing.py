"""Closing several things so that one failure never leaves the others open."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

log = logging.getLogger(__name__)


def close_all(closers: Iterable[Callable[[], None]], what: str) -> None:
    """Call every closer in order; log each failure and re-raise the first once all have run."""
    first: BaseException | None = None
    for close in closers:
        try:
            close()
        except BaseException as exc:  # the rest must still be closed
            log.debug("closing %s: %r failed", what, close, exc_info=True)
            first = first or exc
    if first is not None:
        raise first
