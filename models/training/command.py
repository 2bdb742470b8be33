"""How a training or evaluation command (``python -m models.training.…``) ends on input it cannot use.

A path that does not exist, a folder it cannot write or a file it cannot read is one line on stderr
that names it (and what to do, where the command phrased it), and the exit code is 1; ``--debug``
anywhere on the command line shows the traceback instead. Bad option values never get this far:
argparse refuses them with their range (:mod:`models.ops.arguments`).
"""
from __future__ import annotations

import sys
from typing import Callable, NoReturn


def message(exc: OSError) -> str:
    """The sentence for ``exc``: the command's own words when it phrased one, else the file and the reason."""
    if exc.filename is None or exc.strerror is None:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}; check the path"


def run(main: Callable[[list[str] | None], object]) -> NoReturn:
    """Run ``main`` with the command line (without ``--debug``) and exit: 0, ``main``'s own int, or 1 with one
    line for an :class:`OSError`."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    prog = f"python -m {spec.name}" if spec is not None else main.__module__
    try:
        result = main([a for a in argv if a != "--debug"])
    except OSError as exc:
        if debug:
            raise
        print(f"{prog}: error: {message(exc)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
