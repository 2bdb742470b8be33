"""Weights of :class:`SelfieSegmenter` from MediaPipe's selfie ``.tflite`` files.

The TFLite graph runs its convolutions in the order the module registers them, so
the i-th convolution operator fills the i-th convolution layer; every kernel shape,
stride and padding is checked against the layer, so a different model is refused
instead of loaded wrongly. TFLite keeps kernels channels-last ([out, kh, kw, in];
depthwise [1, kh, kw, channels]); torch wants [out, in/groups, kh, kw], and its
transposed convolution [in, out, kh, kw].

Ahead of time, for a machine without mediapipe::

    python -m models.matting.selfie_torch.convert --variant general --out DIR/selfie-general.safetensors
    python -m models.matting.selfie_torch.convert --variant landscape --out DIR/selfie-landscape.safetensors

and point the app at one file with ``--matting-model FILE``, or at both with
``HARMONICAM_SELFIE_WEIGHTS=DIR`` (see :mod:`models.matting.selfie_torch.weights`).
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.matting.selfie_torch.network import SelfieSegmenter
from models.matting.selfie_torch.tflite import ACTIVATIONS, PADDING, Graph, Operator, TfliteError, read_tflite
from models.ops.checkpoint import save_safetensors

#: The custom operator MediaPipe uses for its transposed convolution with bias.
TRANSPOSE_CONV = "Convolution2DTransposeBias"
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", TRANSPOSE_CONV)


def _transpose_options(op: Operator) -> dict:
    """The custom op's options: TfLiteTransposeConvParams' raw int32s (padding, stride_w, stride_h)."""
    padding, stride_w, stride_h = struct.unpack_from("<3i", op.custom_options)
    # TfLitePadding counts from 1 (1 = same, 2 = valid), unlike the schema's Padding enum.
    return {"padding": {1: "SAME", 2: "VALID"}.get(padding, "?"), "stride_w": stride_w, "stride_h": stride_h}


def _check_layer(op: Operator, layer: nn.Module, index: int) -> None:
    """A TfliteError unless ``op`` computes what ``layer`` does (stride, padding, no fused activation)."""
    options = _transpose_options(op) if op.kind == TRANSPOSE_CONV else dict(op.options)
    if op.kind != TRANSPOSE_CONV:
        options["padding"] = PADDING.get(options["padding"], "?")
    stride = layer.stride[0]
    # A 1×1 kernel at stride 1 is the same whatever the padding; larger ones must pad like SameConv2d.
    padding_ok = options["padding"] == "SAME" or (layer.kernel_size == (1, 1) and stride == 1)
    if op.kind == TRANSPOSE_CONV:  # kernel 2, stride 2: SAME adds no padding
        padding_ok = options["padding"] == "SAME" and layer.kernel_size == (2, 2) and stride == 2
    problems = []
    if (options["stride_h"], options["stride_w"]) != (stride, stride):
        problems.append(f"stride {options['stride_h']}×{options['stride_w']} instead of {stride}")
    if not padding_ok:
        problems.append(f"{options['padding']} padding")
    if ACTIVATIONS.get(options.get("activation", 0)) != "NONE":
        problems.append(f"a fused {ACTIVATIONS.get(options['activation'], '?')} activation")
    if op.kind == "DEPTHWISE_CONV_2D" and options.get("depth_multiplier", 1) != 1:
        problems.append("a depth multiplier")
    if problems:
        raise TfliteError(f"convolution {index} ({op.kind}) has {', '.join(problems)}; "
                          "this is not a MediaPipe selfie segmentation model")


def _kernel(op: Operator, graph: Graph) -> np.ndarray:
    """The operator's kernel in torch's layout."""
    kernel = graph.constant(op.inputs[1])
    if op.kind == "CONV_2D":
        return kernel.transpose(0, 3, 1, 2)  # [out, kh, kw, in] -> [out, in, kh, kw]
    if op.kind == "DEPTHWISE_CONV_2D":
        return kernel.transpose(3, 0, 1, 2)  # [1, kh, kw, ch] -> [ch, 1, kh, kw]
    return kernel.transpose(3, 0, 1, 2)  # transposed: [out, kh, kw, in] -> [in, out, kh, kw]


def state_dict_from_graph(graph: Graph, model: SelfieSegmenter) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` taken from a selfie segmentation TFLite graph; a TfliteError if it does not fit."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    ops = [op for op in graph.operators if op.kind in CONV_OPS]
    if len(ops) != len(layers):
        raise TfliteError(f"the model has {len(ops)} convolutions instead of {len(layers)}; "
                          "this is not a MediaPipe selfie segmentation model")
    state = {}
    for index, (op, (name, layer)) in enumerate(zip(ops, layers)):
        expected_kind = (TRANSPOSE_CONV if isinstance(layer, nn.ConvTranspose2d)
                         else "DEPTHWISE_CONV_2D" if layer.groups > 1 else "CONV_2D")
        if op.kind != expected_kind:
            raise TfliteError(f"convolution {index} is a {op.kind} where the selfie model has a {expected_kind}")
        _check_layer(op, layer, index)
        kernel = _kernel(op, graph)
        bias = graph.constant(op.inputs[2]).reshape(-1)
        if kernel.shape != tuple(layer.weight.shape) or bias.shape != tuple(layer.bias.shape):
            raise TfliteError(f"convolution {index} has a {kernel.shape} kernel where the selfie model has "
                              f"{tuple(layer.weight.shape)}; this is not a MediaPipe selfie segmentation model")
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, np.float32))
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, np.float32))
    return state


def input_size(graph: Graph) -> tuple[int, int]:
    """(width, height) of the graph's NHWC RGB input."""
    shape = graph.tensors[graph.inputs[0]].shape
    if len(shape) != 4 or shape[3] != 3:
        raise TfliteError(f"the model's input has shape {shape}, not an RGB image [1, H, W, 3]")
    return shape[2], shape[1]


def convert(tflite: str | Path) -> tuple[SelfieSegmenter, tuple[int, int]]:
    """The module with the weights of the selfie ``.tflite`` file, and its input (width, height)."""
    graph = read_tflite(tflite)
    model = SelfieSegmenter()
    model.load_state_dict(state_dict_from_graph(graph, model), strict=True)
    return model.eval(), input_size(graph)


def write(tflite: str | Path, out: str | Path) -> tuple[int, int]:
    """Convert ``tflite`` and write the weights to ``out`` (safetensors, atomically); returns the input size."""
    model, (width, height) = convert(tflite)
    save_safetensors(model, out, {"architecture": json.dumps({"width": width, "height": height}),
                                  "source": Path(tflite).name,
                                  "licence": "Apache-2.0, MediaPipe selfie segmentation (Google LLC)"})
    return width, height


def main(argv: list[str] | None = None) -> int:
    """``python -m models.matting.selfie_torch.convert``: write converted weights for another machine."""
    from models.matting.mediapipe_selfie import VARIANTS, bundled_model

    parser = argparse.ArgumentParser(prog="python -m models.matting.selfie_torch.convert",
                                     description="Convert MediaPipe's selfie segmentation .tflite to safetensors "
                                                 "for the selfie-torch matting.")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="general",
                        help="which bundled model to convert (default general, 256×256)")
    parser.add_argument("--tflite", type=Path, help="convert this .tflite instead of the one bundled in mediapipe")
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    source = args.tflite or bundled_model(args.variant)
    if source is None:
        print("mediapipe with its selfie models is not installed here; pass --tflite PATH to a selfie "
              "segmentation .tflite file", file=sys.stderr)
        return 1
    try:
        width, height = write(source, args.out)
    except (OSError, TfliteError) as exc:
        print(f"could not convert {source}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({width}×{height} selfie segmentation weights from {source.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
