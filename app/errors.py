"""Errors a user can cause. Each carries one sentence that says what to do."""


class HarmonicamError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(HarmonicamError):
    """A bad option or argument (exit code 2)."""

    exit_code = 2


class RuntimeFailure(HarmonicamError):
    """Something failed while running: a device, a file, a driver (exit code 1)."""

    exit_code = 1
