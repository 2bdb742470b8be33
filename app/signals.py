"""Stopping cleanly on SIGTERM and SIGHUP, as Ctrl+C (SIGINT) already does.

Python turns SIGINT into ``KeyboardInterrupt``, so every ``finally`` and every
``close(success=False)`` runs and no half-written output is left behind. SIGTERM
(``kill``, a service manager, a logout) and SIGHUP (the terminal was closed)
would instead end the process on the spot. Inside :func:`terminate_on_signals`
they raise :class:`Terminated` in the main thread, which unwinds the same way;
the CLI exits with ``128 + signal number``, as a shell reports a killed process.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

#: Signals that ask a process to end: a plain ``kill``/service manager, and a closed terminal.
TERMINATING: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                                     if hasattr(signal, name))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The exit status for a process stopped by ``signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class Terminated(BaseException):
    """Raised in the main thread when a terminating signal arrives; like ``KeyboardInterrupt``,
    it is not an ``Exception``, so only ``finally`` blocks and ``except BaseException`` see it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    def __str__(self) -> str:
        return f"stopped by {signal_name(self.signum)}"


@contextlib.contextmanager
def handle_signals(handler: Callable[[int], None], signums: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Call ``handler(signum)`` for each of ``signums`` inside the block; the previous handlers come back after.

    A signal that is ignored when the block starts stays ignored (``nohup`` ignores
    SIGHUP on purpose). Outside the main thread, where Python cannot install signal
    handlers, nothing is changed. Yields the signals that were actually taken over.
    """
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            current = signal.getsignal(signum)
            if current == signal.SIG_IGN:
                continue
            previous[signum] = current
            signal.signal(signum, lambda num, _frame: handler(num))
    try:
        yield tuple(previous)
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def terminate_on_signals(signums: tuple[int, ...] = TERMINATING) -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Only the first signal raises: more of them while the stack unwinds (outputs are
    being closed and partial files removed) are ignored, so the clean-up finishes.
    """
    fired: list[int] = []

    def raise_terminated(signum: int) -> None:
        if fired:
            return
        fired.append(signum)
        raise Terminated(signum)

    with handle_signals(raise_terminated, signums):
        yield
