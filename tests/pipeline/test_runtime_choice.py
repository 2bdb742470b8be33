"""``--runtime auto``: ONNX Runtime for the networks on a CPU where it is installed, torch on a GPU."""
from __future__ import annotations

import pytest

from app.assemble import StageChoice, default_runtime, make_harmonizer, resolve_runtime
from app.errors import UsageError
from models.ops import onnx_runtime


def test_auto_is_onnxruntime_on_a_cpu_and_torch_on_a_gpu():
    assert default_runtime("cpu") == "onnxruntime"
    assert default_runtime("cuda") == "torch"
    assert resolve_runtime("auto", "cpu") == "onnxruntime"
    assert resolve_runtime("torch", "cpu") == "torch"


def test_auto_falls_back_to_torch_without_onnxruntime(monkeypatch):
    def missing():
        raise onnx_runtime.RuntimeUnavailable("the onnxruntime package is not installed")

    monkeypatch.setattr(onnx_runtime, "_onnxruntime", missing)
    assert default_runtime("cpu") == "torch"
    with pytest.raises(UsageError, match="onnxruntime package is not installed"):
        resolve_runtime("onnxruntime", "cpu")  # asked for by name, it is an error that says what to install


def test_auto_falls_back_to_torch_without_the_onnx_exporter(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # installed without onnx: no graph can be written
    assert default_runtime("cpu") == "torch"
    harmonizer = make_harmonizer(StageChoice())
    try:
        assert harmonizer.onnx_networks == {}
    finally:
        harmonizer.close()


def test_the_default_choice_runs_the_harmonizer_network_on_onnxruntime():
    harmonizer = make_harmonizer(StageChoice())
    try:
        assert set(harmonizer.onnx_networks) == {"harmonizer"}
        assert make_harmonizer(StageChoice(runtime="torch")).onnx_networks == {}
    finally:
        harmonizer.close()
