"""Telling a failing GPU from a failing stage.

Out of device memory, a lost or reset GPU, a cuDNN or cuBLAS status, a fault inside ONNX
Runtime's CUDA or TensorRT provider: none of these is the stage's fault, and the pipeline's
answer is the same for all of them (rebuild the stages on the CPU and redo the frame). torch
raises some as their own types and others as plain ``RuntimeError``s whose text names the
library; ONNX Runtime raises its own exception types with the library in the text. Stages that
call ONNX Runtime on a GPU pass its errors through :func:`onnxruntime_error`, which keeps a
device failure recognisable after the stage rewords it.
"""
from __future__ import annotations

import re

import torch

#: Words that only a GPU library's runtime failure puts in an error's text (case matters: "cuda:0" in a
#: device-mismatch message is a programming error, not a failing device).
GPU_RUNTIME = re.compile(r"\bCUDA\b|CUDNN|cuDNN|CUBLAS|cuBLAS|CUFFT|cuFFT|CUSOLVER|cuSOLVER|CUSPARSE|NVRTC|"
                         r"TensorRT|\bEP_FAIL\b|illegal memory access|device-side assert|unspecified launch failure")


class DeviceFault(RuntimeError):
    """A GPU runtime failure reported through a library that has no type for it (ONNX Runtime)."""


def _runtime_error(exc: BaseException) -> bool:
    """RuntimeError, torch's accelerator error, or one of ONNX Runtime's own exception types."""
    accelerator_error = getattr(torch, "AcceleratorError", RuntimeError)
    return isinstance(exc, (RuntimeError, accelerator_error)) or type(exc).__module__.startswith("onnxruntime")


def is_device_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the device failed, not the stage."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (torch.cuda.OutOfMemoryError, DeviceFault)):
            return True
        if _runtime_error(exc) and GPU_RUNTIME.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def onnxruntime_error(exc: Exception, message: str, on_gpu: bool, error: type[Exception] = RuntimeError) -> Exception:
    """What a stage raises for an ONNX Runtime failure ``exc``, reworded as ``message``: a :class:`DeviceFault`
    when a GPU provider failed (so the pipeline moves to the CPU), else ``error(message)``."""
    if on_gpu and GPU_RUNTIME.search(str(exc)):
        return DeviceFault(message)
    return error(message)
