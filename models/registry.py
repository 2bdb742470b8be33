"""One registry for every swappable model: name -> factory, per kind.

The CLI's choices, the GUI's combos and the benchmark's loops all come from
here, so adding a model is one file plus one ``@register`` line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

KINDS = ("matting", "blend", "harmonizer")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str
    # Returns None when usable, else the reason it is not (missing weights, package...).
    check: Callable[[], str | None]


_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}


class UnknownModelError(ValueError):
    """Raised for a name that is not registered under a kind."""


def register(kind: str, name: str, summary: str = "",
             check: Callable[[], str | None] | None = None) -> Callable:
    """Class/function decorator that registers a factory under ``kind``/``name``."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")

    def deco(factory: Callable) -> Callable:
        doc = (factory.__doc__ or "").strip().splitlines()
        _ENTRIES[kind][name] = Entry(kind, name, factory, summary or (doc[0] if doc else ""),
                                     check or (lambda: None))
        return factory

    return deco


def _load_builtin() -> None:
    # Importing the packages runs their @register lines.
    import models.blending  # noqa: F401
    import models.harmonizers  # noqa: F401
    import models.matting  # noqa: F401


def entry(kind: str, name: str) -> Entry:
    _load_builtin()
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        choices = ", ".join(names(kind))
        raise UnknownModelError(f"unknown {kind} {name!r}; choose one of: {choices}") from None


def names(kind: str) -> list[str]:
    _load_builtin()
    return list(_ENTRIES[kind])


def available(kind: str) -> list[tuple[str, bool, str]]:
    """(name, usable, reason) for each registered model of ``kind``."""
    _load_builtin()
    out = []
    for e in _ENTRIES[kind].values():
        reason = e.check()
        out.append((e.name, reason is None, reason or e.summary))
    return out


def usable(kind: str) -> list[str]:
    """Names of the models of ``kind`` that can run here (the default choice of bench, evaluate, export)."""
    return [name for name, ok, _ in available(kind) if ok]


def create(kind: str, name: str, **options: Any) -> Any:
    """Instantiate the model registered as ``kind``/``name`` with ``options``."""
    return entry(kind, name).factory(**options)
