"""A small reader for TensorFlow Lite model files: just what converting a float CNN needs.

A ``.tflite`` file is a FlatBuffer whose layout is TensorFlow Lite's public schema
(``schema.fbs``): a Model table holds operator codes, subgraphs and buffers; a
subgraph holds tensors and operators in execution order; an operator names its
opcode, its input and output tensors, and carries either a builtin options table
(one of a union, tagged by type) or the raw bytes of a custom op's options. This
module reads those tables with the ``flatbuffers`` runtime alone (no TensorFlow)
and gives back plain dataclasses with NumPy constants.

Weights stored as float16 and widened by a ``DEQUANTIZE`` operator are folded into
float32 constants here, so a caller sees the graph the model computes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table


class TfliteError(ValueError):
    """A file that is not a TensorFlow Lite model this reader understands; the message says why."""


#: TensorType enum of the schema -> NumPy dtype (the types a float model uses).
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}

#: BuiltinOperator enum of the schema (the operators of small float CNNs).
BUILTIN_OPS = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 21: "RELU6",
    22: "RESHAPE", 23: "RESIZE_BILINEAR", 32: "CUSTOM", 34: "PAD", 40: "MEAN", 67: "TRANSPOSE_CONV",
    97: "RESIZE_NEAREST_NEIGHBOR", 117: "HARD_SWISH",
}

# Builtin options tables: union type -> fields in slot order as (name, flatbuffers type, default).
_BYTE, _INT, _BOOL = nt.Int8Flags, nt.Int32Flags, nt.BoolFlags
_CONV = (("padding", _BYTE, 0), ("stride_w", _INT, 0), ("stride_h", _INT, 0), ("activation", _BYTE, 0),
         ("dilation_w", _INT, 1), ("dilation_h", _INT, 1))
_OPTIONS = {
    1: _CONV,  # Conv2DOptions
    2: (("padding", _BYTE, 0), ("stride_w", _INT, 0), ("stride_h", _INT, 0),  # DepthwiseConv2DOptions
        ("depth_multiplier", _INT, 0), ("activation", _BYTE, 0), ("dilation_w", _INT, 1),
        ("dilation_h", _INT, 1)),
    5: (("padding", _BYTE, 0), ("stride_w", _INT, 0), ("stride_h", _INT, 0),  # Pool2DOptions
        ("filter_w", _INT, 0), ("filter_h", _INT, 0), ("activation", _BYTE, 0)),
    11: (("activation", _BYTE, 0),),  # AddOptions
    15: (("new_height", _INT, 0), ("new_width", _INT, 0), ("align_corners", _BOOL, False),  # ResizeBilinear
         ("half_pixel_centers", _BOOL, False)),
    21: (("activation", _BYTE, 0),),  # MulOptions
    27: (("keep_dims", _BOOL, False),),  # ReducerOptions (MEAN)
}
#: Padding enum of the schema.
PADDING = {0: "SAME", 1: "VALID"}
#: ActivationFunctionType enum of the schema.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass(frozen=True)
class Tensor:
    """A tensor of the graph; ``data`` holds a constant's values (float16 weights widened to float32)."""

    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None = None


@dataclass(frozen=True)
class Operator:
    """One operator: ``kind`` is the builtin name (``CONV_2D`` ...) or a custom op's code."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)
    custom_options: bytes = b""


@dataclass(frozen=True)
class Graph:
    """The first subgraph of a model: tensors by index, operators in execution order."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def constant(self, index: int) -> np.ndarray:
        """The values of constant tensor ``index``; a TfliteError if it is computed."""
        data = self.tensors[index].data
        if data is None:
            raise TfliteError(f"tensor {self.tensors[index].name!r} is not a constant")
        return data


def _field(table: Table, slot: int) -> int:
    return table.Offset(4 + 2 * slot)


def _scalar(table: Table, slot: int, flags, default):
    off = _field(table, slot)
    return table.Get(flags, table.Pos + off) if off else default


def _string(table: Table, slot: int) -> str:
    off = _field(table, slot)
    return table.String(table.Pos + off).decode("utf-8", "replace") if off else ""


def _tables(table: Table, slot: int) -> list[Table]:
    off = _field(table, slot)
    if not off:
        return []
    start = table.Vector(off)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(off))]


def _ints(table: Table, slot: int) -> tuple[int, ...]:
    off = _field(table, slot)
    if not off:
        return ()
    n, start = table.VectorLen(off), table.Vector(off)
    return struct.unpack_from(f"<{n}i", table.Bytes, start)


def _bytes(table: Table, slot: int) -> bytes:
    off = _field(table, slot)
    if not off:
        return b""
    start = table.Vector(off)
    return bytes(table.Bytes[start:start + table.VectorLen(off)])


def _options(op: Table) -> dict:
    kind = _scalar(op, 3, nt.Uint8Flags, 0)
    layout = _OPTIONS.get(kind)
    off = _field(op, 4)
    if layout is None or not off:
        return {}
    table = Table(op.Bytes, op.Indirect(op.Pos + off))
    return {name: _scalar(table, slot, flags, default) for slot, (name, flags, default) in enumerate(layout)}


def is_tflite(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 8 bytes suffice) carries the schema's identifier, TFL3."""
    return len(head) >= 8 and head[4:8] == b"TFL3"


def read_tflite(source: str | Path | bytes) -> Graph:
    """The first subgraph of the ``.tflite`` file (or its bytes) ``source``; a TfliteError if unreadable."""
    data = bytearray(Path(source).read_bytes() if not isinstance(source, bytes) else source)
    if not is_tflite(data):
        raise TfliteError("not a TensorFlow Lite model (no TFL3 identifier)")
    try:
        model = Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
        codes = []
        for code in _tables(model, 1):
            # builtin_code (slot 3) replaced the byte-sized deprecated_builtin_code (slot 0) in newer files.
            number = max(_scalar(code, 0, nt.Int8Flags, 0), _scalar(code, 3, nt.Int32Flags, 0))
            codes.append(_string(code, 1) or BUILTIN_OPS.get(number, f"BUILTIN_{number}"))
        buffers = [_bytes(b, 0) for b in _tables(model, 4)]
        subgraphs = _tables(model, 2)
        if not subgraphs:
            raise TfliteError("the model has no subgraph")
        graph = subgraphs[0]
        tensors = []
        for t in _tables(graph, 0):
            shape, type_code = _ints(t, 0), _scalar(t, 1, nt.Int8Flags, 0)
            dtype = DTYPES.get(type_code)
            if dtype is None:
                raise TfliteError(f"tensor type {type_code} is not supported")
            raw = buffers[_scalar(t, 2, nt.Uint32Flags, 0)]
            values = np.frombuffer(raw, dtype).reshape(shape).copy() if raw else None
            tensors.append(Tensor(_string(t, 3), tuple(shape), dtype, values))
        operators = [Operator(codes[_scalar(op, 0, nt.Uint32Flags, 0)], _ints(op, 1), _ints(op, 2), _options(op),
                              _bytes(op, 5))
                     for op in _tables(graph, 3)]
    except (IndexError, struct.error, ValueError) as exc:
        if isinstance(exc, TfliteError):
            raise
        raise TfliteError(f"the model file is damaged ({type(exc).__name__}: {exc})") from None
    return _fold_dequantize(Graph(tuple(tensors), tuple(operators), _ints(graph, 1), _ints(graph, 2)))


def _fold_dequantize(graph: Graph) -> Graph:
    """Float16 constants widened by DEQUANTIZE become float32 constants; those operators go."""
    tensors = list(graph.tensors)
    kept = []
    for op in graph.operators:
        source = tensors[op.inputs[0]] if op.kind == "DEQUANTIZE" else None
        if source is not None and source.data is not None and source.dtype == np.float16:
            out = tensors[op.outputs[0]]
            tensors[op.outputs[0]] = Tensor(out.name, out.shape, np.float32, source.data.astype(np.float32))
        else:
            kept.append(op)
    return Graph(tuple(tensors), tuple(kept), graph.inputs, graph.outputs)
