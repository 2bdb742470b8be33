"""Reading and writing weights safely, with one clear sentence when a file does not fit.

Files come from users (official ``.pth`` checkpoints of the papers' code) or from
our own training (``.safetensors``). A ``.pth`` is only ever opened with
``torch.load(weights_only=True)``, which refuses to unpickle arbitrary objects.
"""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.ops.files import atomic_path


class CheckpointError(ValueError):
    """A weights file that cannot be read or does not fit the model; ``str()`` is one sentence."""


def _is_safetensors(path: Path) -> bool:
    # A safetensors file starts with the little-endian u64 length of a JSON header.
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 0


def _unwrap(obj: object) -> object:
    # Training scripts often save {"state_dict": ..., "epoch": ...} or {"model": ...}.
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                return obj[key]
    return obj


def load_state_dict_file(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt`` or ``.safetensors`` file onto the CPU.

    The format is recognised from the content, not the suffix. A ``module.`` prefix
    (from ``DataParallel``) is stripped. Raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"The {what} file {path} does not exist; check the path.")
    try:
        if _is_safetensors(path):
            obj: object = load_file(str(path), device="cpu")
        else:
            obj = _unwrap(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # every reader failure means the same to the user
        raise CheckpointError(
            f"The {what} file {path} could not be read as PyTorch or safetensors weights "
            f"({type(exc).__name__}); it is damaged or not a weights file, so download it again."
        ) from exc
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"The {what} file {path} does not contain a state dict of tensors; choose a model weights file.")
    broken = next((k for k, v in obj.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:  # a diverged training run or a damaged file: it would paint NaN frames
        raise CheckpointError(f"The {what} file {path} holds NaN or infinite values (first in {broken!r}); "
                              "it is damaged or from a failed training run, so use another checkpoint.")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str,
                source: str | os.PathLike | None = None) -> None:
    """Load ``state_dict`` into ``module`` only if every key and shape matches exactly.

    On a mismatch, raises :class:`CheckpointError` naming the first missing key, the
    first unexpected key and/or the first shape mismatch (and the ``source`` file
    when given), and loads nothing. ``what`` names the module for the user.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [k for k in expected
                   if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"key '{missing[0]}' is missing")
    if unexpected:
        problems.append(f"key '{unexpected[0]}' is unexpected")
    if wrong_shape:
        k = wrong_shape[0]
        problems.append(f"key '{k}' has shape {tuple(state_dict[k].shape)} "
                        f"instead of {tuple(expected[k].shape)}")
    if problems:
        total = len(missing) + len(unexpected) + len(wrong_shape)
        more = f" ({total} keys differ in all)" if total > len(problems) else ""
        weights = f"The weights in {source}" if source is not None else "These weights"
        raise CheckpointError(f"{weights} do not fit the {what}: {' and '.join(problems)}{more}; "
                              "choose a file made for this model.")
    module.load_state_dict(state_dict, strict=True)


def save_safetensors(module: nn.Module, path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write ``module``'s state dict to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=dict(metadata or {}))


def stored_options(path: str | os.PathLike, types: Mapping[str, type], what: str, writer: str) -> dict:
    """Constructor options from a safetensors file's ``architecture`` metadata: each name of ``types``
    present there, cast to its type. A file without metadata (a ``.pth``) gives none, so the
    constructor's defaults apply; unreadable metadata is a :class:`CheckpointError` saying that the
    ``what`` at ``path`` should be a file written by ``writer``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception:  # a .pth file: it carries no metadata, the defaults apply
        return {}
    try:
        options = json.loads(meta.get("architecture", "{}"))
        return {k: cast(options[k]) for k, cast in types.items() if k in options}
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"The {what} {path} have unreadable architecture metadata; "
                              f"choose a file written by {writer}.") from exc
