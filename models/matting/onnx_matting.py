"""User-supplied ONNX matting models (RVM or MODNet) on ONNX Runtime.

The family is detected from the graph's inputs and outputs by rank and channel
count, not by name, so renamed or fixed-size exports of either model load too.

* RVM: one 3-channel image in [0,1], four recurrent states fed back every
  frame, an optional float ``downsample_ratio``; outputs ``fgr``, ``pha`` and
  the states.
* MODNet: one 3-channel image in [-1,1] whose sides are multiples of 32, one
  1-channel alpha output; stateless.

A frame with device ``pixels`` (see ``models.frame``) is matted without touching
host memory: resized with the torch twin of the OpenCV resize
(``models.ops.tensor_image.resize``: INTER_AREA when shrinking, INTER_LINEAR when
enlarging) and normalised on its device, fed to ONNX Runtime through IO binding, RVM's states kept as OrtValues on the session's device between frames,
and the alpha/fgr returned as torch tensors on the frame's device.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from models.frame import Frame
from models.matting.base import Matte, Matting, MattingModelError
from models.ops.device_faults import onnxruntime_error
from models.ops.tensor_image import resize as resize_tensor
from models.ops.threads import thread_budget
from models.registry import register

log = logging.getLogger(__name__)

USAGE = "needs --matting-model PATH to an RVM or MODNet .onnx file"
EXPECTED = ("expected RVM (an image [B,3,H,W], four rank-4 recurrent states and optionally a float "
            "downsample_ratio [1]; outputs fgr [B,3,H,W], pha [B,1,H,W] and the four states) or "
            "MODNet (one image [B,3,H,W]; one output [B,1,H,W])")
RVM_MAX_SIDE = 512  # RVM's converter default: the downsampled long side is at most 512
MODNET_REF_SIDE = 512  # MODNet's reference size for the short side
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def onnx_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (empty when it is not installed)."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def choose_downsample_ratio(width: int, height: int) -> float:
    """RVM's ``downsample_ratio`` for a frame: the largest multiple of 1/16 (at most 1)
    that keeps the downsampled long side ≤ 512.

    The 1/16 steps reproduce RVM's table (1280×720 → 0.375, 1920×1080 → 0.25,
    4K → 0.125) and keep the ratio, hence the states, stable under small size changes.
    """
    steps = 16 * RVM_MAX_SIDE // max(width, height)
    return min(16, max(1, steps)) / 16


def modnet_size(width: int, height: int) -> tuple[int, int]:
    """MODNet's working (width, height): short side 512 keeping the aspect, sides floored to /32."""
    short = min(width, height)
    w, h = width * MODNET_REF_SIDE // short, height * MODNET_REF_SIDE // short
    return max(32, w - w % 32), max(32, h - h % 32)


@dataclass(frozen=True)
class _Signature:
    """Where the tensors of a detected model are; the outputs are listed in run order."""

    family: str  # "rvm" or "modnet"
    image: Any  # onnxruntime NodeArg of the image input
    outputs: tuple[str, ...]  # RVM: fgr, pha, states in input order; MODNet: alpha
    states: tuple[Any, ...] = ()  # RVM state input NodeArgs, paired by order with outputs[2:]
    ratio: Any = None  # RVM downsample_ratio NodeArg, absent in fixed-ratio exports


def _channels(arg: Any) -> Any:
    return arg.shape[1] if len(arg.shape) == 4 else None


def _detect(inputs: list, outputs: list) -> _Signature | None:
    images = [a for a in inputs if _channels(a) == 3]
    if len(images) != 1:
        return None
    image = images[0]
    others = [a for a in inputs if a is not image]
    colour_outs = [a for a in outputs if _channels(a) == 3]
    alpha_outs = [a for a in outputs if _channels(a) == 1]
    if not others and len(outputs) == 1 and alpha_outs:
        return _Signature("modnet", image, (alpha_outs[0].name,))
    states = [a for a in others if len(a.shape) == 4 and a.type in _FLOAT_TYPES]
    ratios = [a for a in others if len(a.shape) <= 1 and a.type == "tensor(float)"]
    state_outs = [a for a in outputs if len(a.shape) == 4 and _channels(a) not in (1, 3)]
    if (len(states) == 4 and len(ratios) <= 1 and len(others) == len(states) + len(ratios)
            and len(colour_outs) == len(alpha_outs) == 1 and len(state_outs) == 4
            and len(outputs) == 6):
        names = (colour_outs[0].name, alpha_outs[0].name, *(a.name for a in state_outs))
        return _Signature("rvm", image, names, tuple(states), ratios[0] if ratios else None)
    return None


def _describe(args: list) -> str:
    def dims(arg: Any) -> str:
        return ", ".join("?" if d is None else str(d) for d in arg.shape)

    return ", ".join(f"{a.name} [{dims(a)}] {a.type.removeprefix('tensor(').removesuffix(')')}"
                     for a in args)


def _reason(exc: Exception) -> str:
    """First line of an onnxruntime error without its ``[ONNXRuntimeError] : 7 :`` prefix."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


def _open_session(path: Path, device: str, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MattingModelError("the onnx matting backend needs the onnxruntime package "
                                "(pip install onnxruntime, or onnxruntime-gpu for CUDA)") from None
    options = ort.SessionOptions()
    # ONNX Runtime otherwise takes every core and fights the predictor and the call app for them.
    options.intra_op_num_threads = threads or thread_budget().onnxruntime
    providers = ["CPUExecutionProvider"]
    if device != "cpu":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device.startswith("cuda"):
            log.warning("CUDA was asked for, but this onnxruntime has no CUDAExecutionProvider "
                        "(install onnxruntime-gpu); the matting model runs on the CPU")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no narrower base
        raise MattingModelError(f"{path} is not a loadable ONNX model ({_reason(exc)}); "
                                "pass an RVM or MODNet .onnx file") from None
    if session.get_providers()[0] != providers[0]:
        # ORT silently falls back when the CUDA libraries cannot be loaded.
        log.warning("onnxruntime could not start %s; the matting model runs on %s",
                    providers[0], session.get_providers()[0])
    return session


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height); area averaging when shrinking avoids aliasing."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _device_binding(device: torch.device) -> tuple[str, int]:
    """ONNX Runtime's (device_type, device_id) for memory on a torch device."""
    if device.type == "cuda":
        return "cuda", device.index if device.index is not None else torch.cuda.current_device()
    return "cpu", 0


_TORCH_TYPES = {np.float32: torch.float32, np.float16: torch.float16}


class OnnxMatting(Matting):
    """An RVM or MODNet ONNX file on ONNX Runtime; ``family`` says which was detected.

    ``device="cpu"`` forces the CPU; otherwise CUDA is used when this onnxruntime
    offers it. ``threads`` sets ONNX Runtime's intra-op threads (default: the thread budget's share).
    ``downsample_ratio`` overrides RVM's choice from the resolution (e.g. 0.6 for
    full-body shots at 720p); MODNet and fixed-ratio RVM exports ignore it.
    """

    def __init__(self, model_path: str | os.PathLike, *, device: str = "auto",
                 threads: int | None = None, downsample_ratio: float | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            problem = "is not a file" if path.exists() else "does not exist"
            raise MattingModelError(f"matting model {path} {problem}; check the path")
        if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
            raise ValueError(f"downsample_ratio must be in (0, 1], not {downsample_ratio}")
        self._session = _open_session(path, device, threads)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        sig = _detect(inputs, outputs)
        if sig is None:
            raise MattingModelError(f"{path} is not an RVM or MODNet matting model: it has inputs "
                                    f"{_describe(inputs)}, outputs {_describe(outputs)}; {EXPECTED}")
        if sig.image.type not in _FLOAT_TYPES:
            raise MattingModelError(f"{path} takes {sig.image.type} images; only float32 and "
                                    "float16 matting models are supported")
        self._sig = sig
        self._dtype = _FLOAT_TYPES[sig.image.type]
        self._ratio_override = downsample_ratio
        self.model_path = path
        self.family = sig.family
        self.provider = self._session.get_providers()[0]
        self._output_types = {a.name: _FLOAT_TYPES.get(a.type, np.float32) for a in outputs}
        #: Where the session wants its IO-bound tensors (CUDA memory for the CUDA provider).
        self._session_device = torch.device("cpu")
        if self.provider == "CUDAExecutionProvider":
            options = self._session.get_provider_options().get(self.provider, {})
            self._session_device = torch.device("cuda", int(options.get("device_id", 0)))
        self._logged_copy = False
        #: The RVM ratio used for the latest frame (None before the first frame and for MODNet).
        self.downsample_ratio: float | None = None
        #: RVM's recurrent states: NumPy arrays on the host path; on the device path
        #: OrtValues on the session's device (torch zeros for a fresh start).
        self._states: list[Any] | None = None
        self._state_key: tuple | None = None
        log.info("%s matting model %s runs on %s", "RVM" if sig.family == "rvm" else "MODNet",
                 path.name, self.provider)

    def _working_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model runs at: an export's fixed size, else the family's rule."""
        h, w = self._sig.image.shape[2:]
        if isinstance(w, int) and isinstance(h, int):
            return w, h
        return (width, height) if self.family == "rvm" else modnet_size(width, height)

    def _failure(self, exc: Exception, on_gpu: bool) -> Exception:
        """What a failed run raises: a device fault when the GPU failed (the pipeline moves to the CPU)."""
        return onnxruntime_error(exc, f"{self.model_path} failed in onnxruntime ({_reason(exc)})", on_gpu,
                                 MattingModelError)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self._session.run(list(self._sig.outputs), feeds)
        except Exception as exc:  # see _open_session: no narrower base class
            on_gpu = self._session.get_providers()[0] == "CUDAExecutionProvider"
            raise self._failure(exc, on_gpu) from None

    def matte(self, frame: Frame) -> Matte:
        if frame.pixels is not None:
            return self._matte_tensor(frame.pixels)
        width, height = frame.size
        size = self._working_size(width, height)
        rgb = _resize(frame.rgb, size)
        if self.family == "modnet":
            x = np.multiply(rgb.transpose(2, 0, 1)[None], 1 / 127.5, dtype=np.float32) - 1
            (pha,) = self._run({self._sig.image.name: x.astype(self._dtype, copy=False)})
            return Matte(alpha=self._alpha(pha, width, height))

        x = np.multiply(rgb.transpose(2, 0, 1)[None], 1 / 255, dtype=np.float32)
        feeds = {self._sig.image.name: x.astype(self._dtype, copy=False)}
        ratio = None
        if self._sig.ratio is not None:
            ratio = self._ratio_override or choose_downsample_ratio(*size)
            feeds[self._sig.ratio.name] = np.full([1] * len(self._sig.ratio.shape), ratio, np.float32)
        # Stale states of another size or ratio make RVM's Expand fail: start over.
        if self._state_key != (size, ratio):
            self.reset()
            self._state_key = (size, ratio)
        if self._states is None:
            # [1,1,1,1] zeros broadcast inside RVM; fixed-shape exports need their exact shape.
            self._states = [np.zeros([d if isinstance(d, int) else 1 for d in s.shape],
                                     _FLOAT_TYPES[s.type]) for s in self._sig.states]
        feeds.update({s.name: v for s, v in zip(self._sig.states, self._states)})
        fgr, pha, *self._states = self._run(feeds)
        self.downsample_ratio = ratio
        fg = np.clip(fgr[0].transpose(1, 2, 0).astype(np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        return Matte(alpha=self._alpha(pha, width, height), foreground=_resize(fg, (width, height)))

    def _matte_tensor(self, pixels: torch.Tensor) -> Matte:
        """The device path: ``pixels`` float32 1×3×H×W in [0,1]; alpha and fgr come back
        as tensors on the same device, 1×1×H×W and 1×3×H×W."""
        height, width = pixels.shape[-2:]
        size = self._working_size(width, height)
        x = resize_tensor(pixels.float(), size)
        if self.family == "modnet":
            x = x * 2 - 1
        x = self._to_session(x).to(_TORCH_TYPES[self._dtype]).contiguous()
        device_type, device_id = _device_binding(x.device)
        io = self._session.io_binding()
        io.bind_input(self._sig.image.name, device_type, device_id, self._dtype, list(x.shape),
                      x.data_ptr())  # x, like every bound buffer below, outlives the run

        def bind_output(name: str, channels: int) -> torch.Tensor:
            # Fresh per frame: a returned matte must not change when the next frame runs.
            out = torch.empty((1, channels, size[1], size[0]), device=x.device,
                              dtype=_TORCH_TYPES[self._output_types[name]])
            io.bind_output(name, device_type, device_id, self._output_types[name],
                           list(out.shape), out.data_ptr())
            return out

        if self.family == "modnet":
            pha = bind_output(self._sig.outputs[0], 1)
            self._run_bound(io, x)
            return Matte(alpha=self._alpha_tensor(pha, pixels.device, width, height))

        ratio = None
        if self._sig.ratio is not None:
            ratio = self._ratio_override or choose_downsample_ratio(*size)
            # A scalar parameter that ORT reads on the host (Resize scales), as RVM's own
            # IO-binding example binds it.
            ratio_array = np.full([1] * len(self._sig.ratio.shape), ratio, np.float32)
            io.bind_cpu_input(self._sig.ratio.name, ratio_array)
        # As on the NumPy path; the key also names the device so that states never
        # cross paths or devices.
        key = (size, ratio, "device", x.device)
        if self._state_key != key:
            self.reset()
            self._state_key = key
        if self._states is None:
            self._states = [torch.zeros([d if isinstance(d, int) else 1 for d in s.shape],
                                        dtype=_TORCH_TYPES[_FLOAT_TYPES[s.type]], device=x.device)
                            for s in self._sig.states]
        for arg, state in zip(self._sig.states, self._states):
            if isinstance(state, torch.Tensor):  # the zeros of a fresh start
                io.bind_input(arg.name, device_type, device_id, _FLOAT_TYPES[arg.type],
                              list(state.shape), state.data_ptr())
            else:  # an OrtValue from the previous frame, still on the device
                io.bind_ortvalue_input(arg.name, state)
        fgr = bind_output(self._sig.outputs[0], 3)
        pha = bind_output(self._sig.outputs[1], 1)
        for name in self._sig.outputs[2:]:
            io.bind_output(name, device_type, device_id)  # shapes are the model's business
        self._run_bound(io, x)
        self._states = io.get_outputs()[2:]
        self.downsample_ratio = ratio
        fg = resize_tensor(self._from_session(fgr, pixels.device).float().clamp(0, 1),
                           (width, height))
        return Matte(alpha=self._alpha_tensor(pha, pixels.device, width, height), foreground=fg)

    def _to_session(self, x: torch.Tensor) -> torch.Tensor:
        """The working image on the session's device (a copy only when they differ)."""
        target = self._session_device
        if x.device == target:
            return x
        if not self._logged_copy:
            self._logged_copy = True
            log.info("the matting model runs on %s but the frames are on %s: each working "
                     "image is copied to %s and the matte back", self.provider, x.device, target)
        return x.to(target)

    @staticmethod
    def _from_session(out: torch.Tensor, device: torch.device) -> torch.Tensor:
        return out if out.device == device else out.to(device)

    def _run_bound(self, io: Any, x: torch.Tensor) -> None:
        if x.device.type == "cuda":
            # ORT computes on its own stream: the torch work that produced the inputs must be done.
            torch.cuda.current_stream(x.device).synchronize()
        try:
            self._session.run_with_iobinding(io)
        except Exception as exc:  # see _open_session: no narrower base class
            raise self._failure(exc, x.device.type == "cuda") from None
        io.synchronize_outputs()

    def _alpha_tensor(self, pha: torch.Tensor, device: torch.device, width: int,
                      height: int) -> torch.Tensor:
        alpha = self._from_session(pha, device).float().clamp(0, 1)
        return resize_tensor(alpha, (width, height))

    @staticmethod
    def _alpha(pha: np.ndarray, width: int, height: int) -> np.ndarray:
        alpha = np.clip(pha[0, 0].astype(np.float32, copy=False), 0, 1)
        return _resize(alpha, (width, height))

    def reset(self) -> None:
        self._states = None
        self._state_key = None

    def close(self) -> None:
        self._session = None


def _check() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "the onnxruntime package is not installed"
    return USAGE  # usable only once the user names a file


@register("matting", "onnx", "user-supplied RVM or MODNet .onnx on ONNX Runtime", check=_check)
def open_onnx_matting(model_path: str | os.PathLike | None = None, *, device: str = "auto",
                      threads: int | None = None,
                      downsample_ratio: float | None = None) -> OnnxMatting:
    """Open a user-supplied RVM or MODNet ``.onnx`` file (see ``OnnxMatting``)."""
    if not model_path:
        raise MattingModelError(f"the onnx matting backend {USAGE}")
    return OnnxMatting(model_path, device=device, threads=threads, downsample_ratio=downsample_ratio)
