"""The exported graphs' zero padding, folded into the convolutions it feeds."""
from __future__ import annotations

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from models.ops.efficientnet import SameConv2d
from models.ops.onnx_export import OnnxSpec, export_onnx


class Stem(nn.Module):
    """A stride-2 TF-"SAME" convolution on an even size (padded after only), one padded symmetrically, and a
    padding with a value that no convolution can take over."""

    def __init__(self) -> None:
        super().__init__()
        self.down = SameConv2d(3, 4, 3, size=16, stride=2)
        self.same = SameConv2d(4, 4, 3, size=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(self.same(self.down(x)), (1, 1, 1, 1), value=0.5)


def test_zero_padding_is_folded_into_its_convolution_and_the_rest_is_left(tmp_path):
    stem = Stem()
    assert stem.down.pad == (0, 1, 0, 1) and stem.down.padding == (0, 0)  # torch pads it itself
    path = tmp_path / "stem.onnx"
    assert export_onnx(OnnxSpec("stem", stem, ((1, 3, 16, 16),), ("x",), ("y",)), path) <= 1e-4  # checked
    graph = onnx.load(str(path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    pads = [list(next(a.ints for a in n.attribute if a.name == "pads")) for n in convs]
    assert pads == [[0, 0, 1, 1], [1, 1, 1, 1]]  # (top, left, bottom, right): TF's after-only padding
    assert [n.op_type for n in graph.node].count("Pad") == 1  # the 0.5 border stays a Pad
    assert not list(tmp_path.glob("*.basic"))  # the intermediate file is gone
