"""ONNX export of the learned networks, validated against torch on ONNX Runtime.

Each model that has a network says what to export through ``onnx_specs()`` (a
list of :class:`OnnxSpec`); ``harmonicam export-onnx`` writes one ``.onnx`` per
spec. Every file has a dynamic batch axis, the opset it states, its zero padding folded
into the convolutions it feeds (:mod:`models.ops.onnx_graph`), and is checked right after
writing: ONNX Runtime loads it, runs a batch of two random inputs and
must agree with the torch module within ``TOLERANCE``. A spec with ``dynamic_size``
also gets dynamic height and width axes, checked at a second size as well.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.ops.files import atomic_path
from models.ops.onnx_graph import fold_zero_pads

OPSET = 17
TOLERANCE = 1e-4


@dataclass(frozen=True)
class OnnxSpec:
    """One network to export: ``module(*inputs)`` with these input shapes (batch first) and names.

    ``dynamic_size``: None fixes every input's height and width as in ``input_shapes``;
    an (h, w) makes height and width dynamic axes of every input and output (all
    N×C×H×W then) and the export is also checked at h×w, so a graph that baked a size
    into its operators is refused.
    """

    name: str
    module: nn.Module
    input_shapes: tuple[tuple[int, ...], ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_size: tuple[int, int] | None = None


class ExportError(ValueError):
    """An exported file that does not load or does not agree with torch; the message says which."""


def _inputs(spec: OnnxSpec, batch: int, seed: int, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of ``spec`` with ``batch`` rows, at ``size`` (h, w) instead of the spec's when given."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(*shape[1:-2], *size) if size else shape[1:] for shape in spec.input_shapes]
    return tuple(torch.rand((batch, *shape), generator=g) for shape in shapes)


def export_onnx(spec: OnnxSpec, path: Path, opset: int = OPSET) -> float:
    """Write ``spec`` to ``path`` (atomically) and return the largest |ONNX Runtime − torch| difference."""
    import onnxruntime as ort

    module = spec.module.float().eval()
    axes = {name: {0: "batch", **({2: "height", 3: "width"} if spec.dynamic_size else {})}
            for name in (*spec.input_names, *spec.output_names)}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
        torch.onnx.export(module, _inputs(spec, 1, 0), str(tmp), input_names=list(spec.input_names),
                          output_names=list(spec.output_names), dynamic_axes=axes, opset_version=opset,
                          dynamo=False)
        fold_zero_pads(tmp)
        try:
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime's errors share no narrower base
            raise ExportError(f"{spec.name}: ONNX Runtime cannot load the export ({exc})") from None
        names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
        if names != (spec.input_names, spec.output_names):
            raise ExportError(f"{spec.name}: the export has inputs {names[0]} and outputs {names[1]}")
        diff = 0.0
        # A batch of two: the batch axis really is dynamic (and so are height and width, when declared).
        checks = [_inputs(spec, 2, 1)] + ([_inputs(spec, 2, 2, spec.dynamic_size)] if spec.dynamic_size else [])
        for inputs in checks:
            got = session.run(None, {n: x.numpy() for n, x in zip(spec.input_names, inputs)})
            with torch.no_grad():
                want = module(*inputs)
            want = want if isinstance(want, (tuple, list)) else (want,)
            diff = max(diff, *(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)))
        if not diff <= TOLERANCE:
            raise ExportError(f"{spec.name}: ONNX Runtime differs from torch by {diff:.2g} (> {TOLERANCE})")
    return diff
