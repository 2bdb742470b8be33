"""Predict slowly, apply every frame: harmonization parameters on a worker thread.

A harmonizer network is too slow to run on every frame of a CPU, but its
output (a handful of parameters) changes slowly. ``ParameterTracker`` runs the
prediction at a fixed rate and smooths the parameters with a time constant in
seconds, so frames are never held up and the look does not flicker.

Live streams predict asynchronously on a thread (the newest inputs win; the
frame rate never waits). File streams predict synchronously whenever the media
clock has advanced by one period, so a file always renders the same way.

A live prediction that raises (a driver hiccup, a network that cannot take an
input) does not end harmonization: it is logged once, the last parameters stay
in use, and the newest request is tried again after a back-off that doubles up
to :data:`RETRY_MAX_S`; the first success clears it. In file mode the exception
goes to the caller (the pipeline reports it) and the next due frame tries again.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from models.ops.temporal import TimeEMA
from models.ops.threads import yield_to_the_frame_loop

log = logging.getLogger(__name__)

Predict = Callable[[Any], np.ndarray]

#: The wait before the first retry of a failed live prediction (seconds); each further failure doubles it.
RETRY_S = 0.5
#: The longest wait between retries.
RETRY_MAX_S = 8.0


class ParameterTracker:
    def __init__(self, predict: Predict, rate_hz: float = 10.0, tau_s: float = 1.0, live: bool = True) -> None:
        self.predict = predict
        self.period = 1.0 / rate_hz
        self.live = live
        self._ema = TimeEMA(tau_s)
        self._lock = threading.Lock()
        self._last_request: float | None = None
        self._next_due = 0.0
        self._pending: tuple[Any, float] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The exception of the last live prediction while predictions fail; None once one succeeds.
        self.error: Exception | None = None
        self.predictions = 0

    def due(self, t: float) -> bool:
        """Whether a new prediction should be requested for media/capture time ``t``."""
        return self._last_request is None or t >= self._next_due or t < self._last_request

    def submit(self, inputs: Any, t: float) -> None:
        """Request a prediction from ``inputs`` (already small: they cross threads)."""
        # Requests sit on a grid of one period, so the rate holds at any frame rate;
        # after a pause (or a jump back in time) the grid restarts instead of catching up.
        restart = self._last_request is None or t < self._last_request or t - self._next_due >= self.period
        self._next_due = t + self.period if restart else self._next_due + self.period
        self._last_request = t
        if not self.live:
            self._store(self.predict(inputs), t)
            return
        with self._lock:
            self._pending = (inputs, t)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="harmonizer-args", daemon=True)
            self._thread.start()
        self._wake.set()

    def _store(self, params: np.ndarray, t: float) -> bool:
        """Take a prediction in; returns whether it ends a run of failures. The error is cleared under the same
        lock, so no reader sees the new look beside the old error."""
        with self._lock:
            self._ema.update(np.asarray(params, np.float32), t)
            self.predictions += 1
            recovered, self.error = self.error is not None, None
        return recovered

    def _work(self) -> None:
        yield_to_the_frame_loop()  # predictions take the CPU time the frames leave
        backoff = RETRY_S
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                job, self._pending = self._pending, None
            if job is None or self._stop.is_set():
                continue
            try:
                recovered = self._store(self.predict(job[0]), job[1])
            except Exception as exc:
                if self.error is None:  # once per run of failures: the log is not flooded at the frame rate
                    log.warning("a harmonizer prediction failed (%s); the last look is kept and predictions are "
                                "retried", exc, exc_info=log.isEnabledFor(logging.DEBUG))
                self.error = exc
                self._stop.wait(backoff)  # the newest request waits it out; close() ends the wait
                backoff = min(2 * backoff, RETRY_MAX_S)
                continue
            if recovered:
                log.info("harmonizer predictions work again")
                backoff = RETRY_S

    def current(self) -> np.ndarray | None:
        """The smoothed parameters, or None before the first prediction."""
        with self._lock:
            return None if self._ema.value is None else self._ema.value.copy()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
