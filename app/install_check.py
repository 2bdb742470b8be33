"""Refuse an install with two ONNX Runtime distributions, which break each other.

``onnxruntime`` and ``onnxruntime-gpu`` (and the other builds of ONNX Runtime) all
install the same ``onnxruntime`` package folder: with two of them, ``import
onnxruntime`` gets whichever was written last, pip still lists both, and removing
one deletes files the other needs. Harmonicam's extras ask for one of them (``cpu``
or ``gpu``); this check catches an environment that holds more than one anyway.
"""
from __future__ import annotations

from importlib import metadata

from app.errors import RuntimeFailure

#: The distributions that install the ``onnxruntime`` package folder.
ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")


def installed_onnxruntimes() -> list[str]:
    """The ONNX Runtime distributions installed in this environment, by name."""
    found = []
    for name in ONNXRUNTIME_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def check_onnxruntime_install() -> None:
    """Raise :class:`RuntimeFailure` naming the fix when more than one ONNX Runtime is installed."""
    found = installed_onnxruntimes()
    if len(found) < 2:
        return
    raise RuntimeFailure(f"{', '.join(found)} are installed together and overwrite each other's files; "
                         f"remove them with 'pip uninstall -y {' '.join(found)}', then install one: "
                         "'pip install \"onnxruntime-gpu>=1.17,<1.29\"' for an NVIDIA GPU or "
                         "'pip install \"onnxruntime>=1.17,<1.29\"' for the CPU")
