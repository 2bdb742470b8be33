"""Turns user choices into models: the one place the CLI, the GUI and the benchmark
create stages by name (all names come from the registry)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.errors import RuntimeFailure, UsageError
from models import registry
from models.matting.postprocess import MatteOptions

log = logging.getLogger(__name__)

#: The choice of a blend or runtime that is decided per device (default_blend, default_runtime).
AUTO = "auto"


@dataclass
class StageChoice:
    matting: str = "mediapipe"
    matting_model: str | None = None
    blend: str = "auto"  # AUTO: the best blend that keeps real time on ``device`` (default_blend)
    blend_weights: str | None = None
    harmonizer: str = "harmonizer"  # the default harmonizer (issue 3; DESIGN.md)
    harmonizer_weights: str | None = None
    strength: float = 1.0
    device: str = "cpu"
    matte: MatteOptions = field(default_factory=MatteOptions)
    runtime: str = "auto"  # what runs the learned networks of the blend and the harmonizer (resolve_runtime)


def resolve_device(name: str) -> str:
    """``auto`` → cuda when present, else cpu; refuses cuda on a machine without it."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but this PyTorch has no CUDA device; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r} is not one of auto, cpu, cuda")
    return name


def default_runtime(device: str) -> str:
    """ONNX Runtime on a CPU where it is installed, else torch.

    On a 2-core CPU one prediction of the harmonizer's regressor takes about 30 ms in torch
    and 9 ms in ONNX Runtime (one thread each); at 10 predictions a second that is a fifth
    of a core handed back to the frame loop. On CUDA the torch path is the one measured and
    tested with device-resident frames, so it stays the default there.
    """
    from models.ops.onnx_runtime import ONNXRUNTIME, TORCH, RuntimeUnavailable, providers_for

    if device != "cpu":
        return TORCH
    try:
        providers_for(device)
    except RuntimeUnavailable:
        return TORCH
    return ONNXRUNTIME


def resolve_runtime(name: str, device: str) -> str:
    """``name`` (``auto``: :func:`default_runtime`) when it can run the learned networks on ``device`` here,
    else a usage error saying what to install."""
    from models.ops.onnx_runtime import ONNXRUNTIME, RUNTIMES, RuntimeUnavailable, providers_for

    if name == AUTO:
        return default_runtime(device)
    if name not in RUNTIMES:
        raise UsageError(f"--runtime {name!r} is not one of {AUTO}, {', '.join(RUNTIMES)}")
    if name == ONNXRUNTIME:
        try:
            providers_for(device)
        except RuntimeUnavailable as exc:
            raise UsageError(f"--runtime onnxruntime on {device}: {exc}") from None
    return name


def create(kind: str, name: str, **options):
    """``registry.create`` with user-facing errors (bad name → exit 2, unusable file → exit 1)."""
    options = {k: v for k, v in options.items() if v is not None}
    try:
        entry = registry.entry(kind, name)
    except registry.UnknownModelError as exc:
        raise UsageError(str(exc)) from None
    try:
        return entry.factory(**options)
    except (ValueError, OSError) as exc:
        raise RuntimeFailure(str(exc)) from None


def make_matting(choice: StageChoice):
    return create("matting", choice.matting, model_path=choice.matting_model, device=choice.device)


def _runtime(choice: StageChoice) -> str | None:
    """The runtime option for a stage factory: left out for torch, the default every stage has."""
    runtime = resolve_runtime(choice.runtime, choice.device)
    return None if runtime == "torch" else runtime


def make_harmonizer(choice: StageChoice):
    options = {"strength": choice.strength, "device": choice.device, "runtime": _runtime(choice)}
    if choice.harmonizer_weights:
        options["weights"] = choice.harmonizer_weights
    return create("harmonizer", choice.harmonizer, **options)



def default_blend(device: str) -> str:
    """The learned blend where it keeps real time, else ``defringe``.

    On CUDA the learned blend costs a few milliseconds at 1080p; on a CPU it is far from
    the 30 FPS at 1280×720 it would need with the default harmonizer (``harmonicam bench``:
    about 10 FPS on a 2-core laptop-class CPU), so the CPU default is the fast non-learned
    ``defringe``.
    """
    if device == "cuda" and "learned" in registry.usable("blend"):
        return "learned"
    return "defringe"


def blend_name(choice: StageChoice) -> str:
    """The registered blend a choice means (``auto`` resolved for its device)."""
    return default_blend(choice.device) if choice.blend == AUTO else choice.blend


def make_blend(choice: StageChoice):
    return create("blend", blend_name(choice), device=choice.device, weights=choice.blend_weights,
                  runtime=_runtime(choice))
