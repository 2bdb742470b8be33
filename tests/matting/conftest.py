"""Tiny ONNX stand-ins for RVM and MODNet, exported once per test session.

They have the real models' input/output names, shapes, dtypes and dynamic axes
(research notes §6.1 and §7.1) but fixed arithmetic, so tests can predict them:

* tiny RVM: ``fgr = 1 − src``; the states sit at strides 2…16 of the
  downsampled frame with 16, 20, 40, 64 channels, ``rKo = 0.5·rKi + 0.5·gray``;
  ``pha = 0.5·gray(src) + 0.5·mean(r1o)``. On a constant grey ``c`` the alpha is
  0.75·c on a fresh state and 0.875·c on the next frame. Stale states of another
  size fail to broadcast, as real RVM's do.
* tiny MODNet: ``alpha = (mean(input) + 1) / 2``, i.e. the grey level only when
  the input is normalised to [−1, 1]; sides that are not multiples of 32 fail.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

RVM_STATE_CHANNELS = (16, 20, 40, 64)
RVM_INPUTS = ["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"]
RVM_OUTPUTS = ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]


class _ResizeByRatio(torch.autograd.Function):
    """Resize by a runtime ratio tensor, exported as ONNX Resize (as RVM's onnx_helper does)."""

    @staticmethod
    def forward(ctx, x, ratio):
        return F.interpolate(x, scale_factor=float(ratio), mode="bilinear",
                             align_corners=False, recompute_scale_factor=False)

    @staticmethod
    def symbolic(g, x, ratio):
        roi = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
        ones = g.op("Constant", value_t=torch.tensor([1.0, 1.0]))
        scales = g.op("Concat", ones, ratio, ratio, axis_i=0)
        return g.op("Resize", x, roi, scales, mode_s="linear",
                    coordinate_transformation_mode_s="half_pixel")


class TinyRvm(torch.nn.Module):
    def forward(self, src, r1i, r2i, r3i, r4i, downsample_ratio):
        feature = _ResizeByRatio.apply(src, downsample_ratio).mean(1, keepdim=True)
        states = []
        for state, channels in zip((r1i, r2i, r3i, r4i), RVM_STATE_CHANNELS):
            feature = F.avg_pool2d(feature, 2, 2, ceil_mode=True)  # ceil halving, like RVM's encoder
            states.append(0.5 * state + 0.5 * feature * torch.ones(1, channels, 1, 1))
        pha = (0.5 * src.mean(1, keepdim=True) + 0.5 * states[0].mean((1, 2, 3), keepdim=True))
        return (1 - src, pha.clamp(0, 1), *states)


class TinyRvmFp16(torch.nn.Module):
    """fp16 images and states, float32 ratio: the dtypes of RVM's ``*_fp16.onnx``."""

    def forward(self, src, r1i, r2i, r3i, r4i, downsample_ratio):
        outs = TinyRvm()(src.float(), r1i.float(), r2i.float(), r3i.float(), r4i.float(),
                         downsample_ratio)
        return tuple(o.half() for o in outs)


class TinyRvmFixed(torch.nn.Module):
    """OpenVINO-style export: states named r1…r4, no ratio input (0.5 baked in), pha before fgr."""

    def forward(self, src, r1, r2, r3, r4):
        fgr, pha, *states = TinyRvm()(src, r1, r2, r3, r4, torch.tensor([0.5]))
        return (pha, fgr, *states)


class TinyModnet(torch.nn.Module):
    def forward(self, x):
        gray = x.mean(1, keepdim=True)
        # Only there to fail on sides that are not multiples of 32, like MODNet's hr_branch.
        coarse = F.interpolate(F.avg_pool2d(gray, 32), scale_factor=32.0, mode="nearest")
        return ((gray + 1) / 2 + 0 * coarse).clamp(0, 1)


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 1000)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


def _export(module, args, path: Path, inputs, outputs, dynamic_axes=None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about float(ratio) etc.
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=12, dynamo=False)
    return path


def _rvm_dynamic_axes() -> dict:
    image = {0: "batch", 2: "height", 3: "width"}
    axes = {"src": image, "fgr": image, "pha": image}
    for k in range(1, 5):
        axes[f"r{k}i"] = {0: "batch", 1: f"c{k}", 2: f"h{k}", 3: f"w{k}"}
        axes[f"r{k}o"] = {0: "batch", 2: f"h{k}", 3: f"w{k}"}
    return axes


@pytest.fixture(scope="session")
def tiny_rvm_onnx(tmp_path_factory) -> Path:
    """fp32 RVM-like model with the official names and dynamic axes."""
    zeros = torch.zeros(1, 1, 1, 1)
    args = (torch.rand(1, 3, 64, 96), zeros, zeros, zeros, zeros, torch.tensor([0.5]))
    return _export(TinyRvm(), args, tmp_path_factory.mktemp("onnx") / "rvm_fp32.onnx",
                   RVM_INPUTS, RVM_OUTPUTS, _rvm_dynamic_axes())


@pytest.fixture(scope="session")
def tiny_rvm_fp16_onnx(tmp_path_factory) -> Path:
    zeros = torch.zeros(1, 1, 1, 1, dtype=torch.float16)
    args = (torch.rand(1, 3, 64, 96).half(), zeros, zeros, zeros, zeros, torch.tensor([0.5]))
    return _export(TinyRvmFp16(), args, tmp_path_factory.mktemp("onnx") / "rvm_fp16.onnx",
                   RVM_INPUTS, RVM_OUTPUTS, _rvm_dynamic_axes())


@pytest.fixture(scope="session")
def tiny_rvm_fixed_onnx(tmp_path_factory) -> Path:
    """Fixed 96×64 input; fixed state shapes for ratio 0.5 (downsampled 48×32)."""
    states = [torch.zeros(1, c, 32 >> k, 48 >> k) for k, c in enumerate(RVM_STATE_CHANNELS, 1)]
    return _export(TinyRvmFixed(), (torch.rand(1, 3, 64, 96), *states),
                   tmp_path_factory.mktemp("onnx") / "rvm_fixed.onnx",
                   ["src", "r1", "r2", "r3", "r4"], ["alpha", "foreground", "s1", "s2", "s3", "s4"])


@pytest.fixture(scope="session")
def tiny_modnet_onnx(tmp_path_factory) -> Path:
    axes = {0: "batch_size", 2: "height", 3: "width"}
    return _export(TinyModnet(), (torch.rand(1, 3, 64, 96) * 2 - 1,),
                   tmp_path_factory.mktemp("onnx") / "modnet.onnx",
                   ["input"], ["output"], {"input": axes, "output": axes})


@pytest.fixture(scope="session")
def tiny_classifier_onnx(tmp_path_factory) -> Path:
    """Not a matting model: an image in, a 1000-vector out."""
    return _export(TinyClassifier(), (torch.rand(1, 3, 224, 224),),
                   tmp_path_factory.mktemp("onnx") / "classifier.onnx", ["input"], ["logits"])
