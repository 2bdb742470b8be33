"""A failing GPU, told from a failing stage (models.ops.device_faults), and the pipeline's answer to it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.backgrounds import ColourBackground
from app.pipeline import Pipeline
from models import registry
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.device_faults import DeviceFault, is_device_failure, onnxruntime_error
from tests.pipeline.test_pipeline import HalfMatting, OffsetHarmonizer, frame_at

GPU_FAILURES = [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
    RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, opb, m, n, k)`"),
    RuntimeError("GET was unable to find an engine to execute this computation"
                 " (CUDNN_STATUS_NOT_SUPPORTED)"),
    DeviceFault("blend-unet failed in ONNX Runtime (CUDA failure 700: an illegal memory access)"),
]
STAGE_FAILURES = [
    ValueError("weights do not fit"),
    RuntimeError("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"),
    RuntimeError("The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"),
    KeyError("CUDA"),
]


@pytest.mark.parametrize("exc", GPU_FAILURES, ids=lambda e: str(e)[:40])
def test_gpu_runtime_errors_are_device_failures(exc):
    assert is_device_failure(exc)


@pytest.mark.parametrize("exc", STAGE_FAILURES, ids=lambda e: str(e)[:40])
def test_a_stage_s_own_errors_are_not(exc):
    assert not is_device_failure(exc)


def test_a_device_failure_reworded_by_a_stage_is_still_one():
    try:
        try:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")
        except RuntimeError as inner:
            raise ValueError("the harmonizer failed") from inner
    except ValueError as outer:
        assert is_device_failure(outer)


def onnxruntime_failure() -> Exception:
    """A real error from ONNX Runtime's own types: a session run with an input of the wrong rank."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        session.run(None, {"x": np.zeros((1, 1), np.float32)})
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own types
        return exc
    raise AssertionError("the bad run did not fail")


def test_onnxruntime_errors_become_device_faults_only_when_a_gpu_provider_failed():
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    real = onnxruntime_failure()
    assert type(real).__module__.startswith("onnxruntime") and not is_device_failure(real)
    assert type(onnxruntime_error(real, "the net failed", on_gpu=True)) is RuntimeError
    # What the CUDA provider raises when the GPU faults mid-run (no GPU here to make it fail for real).
    gpu = Fail("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700: an illegal memory access ; GPU=0")
    assert is_device_failure(gpu)
    assert isinstance(onnxruntime_error(gpu, "the net failed", on_gpu=True), DeviceFault)
    assert type(onnxruntime_error(gpu, "the net failed", on_gpu=False, error=ValueError)) is ValueError


class FailingOnce:
    """Wraps a stage method: raises ``exc`` on its first call, then does the real work."""

    def __init__(self, method, exc):
        self.method, self.exc = method, exc

    def __call__(self, *args):
        exc, self.exc = self.exc, None
        if exc is not None:
            raise exc
        return self.method(*args)


@pytest.mark.parametrize("stage", ["matting", "blend", "harmonizer"])
def test_a_device_failure_in_any_stage_moves_the_pipeline_to_the_cpu(stage):
    rebuilt = []

    def cpu_stages():
        rebuilt.append(1)
        return HalfMatting(), registry.create("blend", "linear"), OffsetHarmonizer(+10)

    p = Pipeline(HalfMatting(), ColourBackground((0, 0, 255)), registry.create("blend", "linear"),
                 OffsetHarmonizer(+10), MattePostprocess(MatteOptions(smoothing_s=0, refine=False)),
                 device="cuda", resident=False, cpu_stages=cpu_stages)
    failing, name = {"matting": (p.matting, "matte"), "blend": (p.blend, "blend"),
                     "harmonizer": (p.harmonizer, "harmonize")}[stage]
    setattr(failing, name, FailingOnce(getattr(failing, name), RuntimeError("cuDNN error: CUDNN_STATUS_MAPPING_ERROR")))
    out = p.process(frame_at(0.0)).output  # the failing frame is redone on the CPU
    assert rebuilt == [1] and p.device == "cpu"
    assert (out[:, :4] == 210).all() and (out[:, 4:] == (10, 10, 255)).all()
    assert "now runs on the CPU" in p.take_faults()[0]
    p.close()
