"""Turns user choices into models: the one place the CLI, the GUI and the benchmark
create stages by name (all names come from the registry)."""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field

from app.errors import RuntimeFailure, UsageError
from models import registry
from models.blending.linear import compiled_blend
from models.matting import DEFAULT_MATTING
from models.matting.postprocess import MatteOptions
from models.ops.compiled import compiler_installed

log = logging.getLogger(__name__)

#: The choice of a blend or runtime that is decided per device (default_blend, default_runtime).
AUTO = "auto"


@dataclass
class StageChoice:
    matting: str = DEFAULT_MATTING
    matting_model: str | None = None
    blend: str = "auto"  # AUTO: the blend that wins on real footage and keeps real time on ``device``
    blend_weights: str | None = None
    harmonizer: str = "harmonizer"  # the default harmonizer (issue 3; DESIGN.md)
    harmonizer_weights: str | None = None
    strength: float = 1.0
    keep_bright: bool = True  # the person darkened or flattened only as far as the background justifies
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


def _entry(kind: str, name: str) -> registry.Entry:
    """The registry's entry, or a usage error naming the choices (exit 2)."""
    try:
        return registry.entry(kind, name)
    except registry.UnknownModelError as exc:
        raise UsageError(str(exc)) from None


def create(kind: str, name: str, **options):
    """``registry.create`` with user-facing errors (bad name → exit 2, unusable file → exit 1)."""
    options = {k: v for k, v in options.items() if v is not None}
    entry = _entry(kind, name)
    try:
        return entry.factory(**options)
    except (ValueError, OSError) as exc:
        raise RuntimeFailure(str(exc)) from None


def takes_runtime(kind: str, name: str) -> bool:
    """Whether the registered factory runs its networks on a chosen runtime (torch or ONNX Runtime); MediaPipe's
    own graphs and a user's ONNX matting file have theirs."""
    return "runtime" in inspect.signature(_entry(kind, name).factory).parameters


def make_matting(choice: StageChoice):
    options = {"model_path": choice.matting_model, "device": choice.device}
    if takes_runtime("matting", choice.matting):
        options["runtime"] = resolve_runtime(choice.runtime, choice.device)
    return create("matting", choice.matting, **options)


def _runtime(choice: StageChoice) -> str | None:
    """The runtime option for a stage factory: left out for torch, the default every stage has."""
    runtime = resolve_runtime(choice.runtime, choice.device)
    return None if runtime == "torch" else runtime


def make_harmonizer(choice: StageChoice):
    options = {"strength": choice.strength, "device": choice.device, "runtime": _runtime(choice)}
    if choice.harmonizer_weights:
        options["weights"] = choice.harmonizer_weights
    harmonizer = create("harmonizer", choice.harmonizer, **options)
    harmonizer.keep_bright = choice.keep_bright
    return harmonizer



#: What decides ``auto``: each blend's band and whole-frame PSNR (dB) on held-out real footage, the 7
#: evaluation-only DAVIS 2016 person sequences (every 8th frame over the 4 shipped backgrounds; MediaPipe
#: through the default matte post-processing of 43391e1, the learned blend fine-tuned on real matte errors of
#: the six training sequences), from ``python -m models.training.evaluate_blend_footage --footage
#: ../shared/eval/real-footage`` (README, "On real footage").
REAL_FOOTAGE_PSNR: dict[str, tuple[float, float]] = {
    "linear": (18.67, 28.91),
    "defringe": (18.61, 28.88),
    "learned": (19.25, 29.23),
}
#: A blend replaces linear blending only when it is at least this much better inside the band and no
#: worse over the whole frame: the learned blend's +1.3 dB on synthetic triplets came to +0.6 dB here.
REAL_FOOTAGE_WIN_DB = 1.5
#: The blends that keep real time on each device. On a CPU the learned network is far from the 30 FPS at
#: 1280×720 it would need with the default harmonizer (``harmonicam bench``: about 10 FPS on a 2-core CPU).
REAL_TIME_BLENDS = {"cpu": ("linear", "defringe"), "cuda": ("linear", "defringe", "learned")}


def default_blend(device: str) -> str:
    """The blend that wins on held-out real footage (:data:`REAL_FOOTAGE_PSNR`, :data:`REAL_FOOTAGE_WIN_DB`)
    among those that keep real time on ``device`` and can run here; ``linear`` where none does.

    With today's figures none wins, on any device: ``defringe`` is below linear blending on this footage
    and the learned blend 0.6 dB above it, short of the margin.
    """
    linear_band, linear_frame = REAL_FOOTAGE_PSNR["linear"]
    usable = set(registry.usable("blend")) & set(REAL_TIME_BLENDS.get(device, ()))
    winners = {name: band for name, (band, frame) in REAL_FOOTAGE_PSNR.items()
               if name in usable and band >= linear_band + REAL_FOOTAGE_WIN_DB and frame >= linear_frame}
    return max(winners, key=winners.get, default="linear")


def blend_name(choice: StageChoice) -> str:
    """The registered blend a choice means (``auto`` resolved for its device)."""
    return default_blend(choice.device) if choice.blend == AUTO else choice.blend


def make_blend(choice: StageChoice):
    blend = create("blend", blend_name(choice), device=choice.device, weights=choice.blend_weights,
                   runtime=_runtime(choice))
    if choice.device == "cpu" and compiler_installed():  # every blend composites through it on the CPU
        compiled_blend()  # compiled or loaded now, not on the first frame
    return blend
