"""Learned networks on ONNX Runtime instead of torch, on the per-frame path (issue "Speed").

A stage built with ``runtime="onnxruntime"`` calls an :class:`OnnxRuntimeNetwork`
where it would call its torch module. The stand-in is built from one of the stage's
own ``onnx_specs()``, so the graph that runs is the one ``harmonicam export-onnx``
writes and checks against torch. It takes and returns torch tensors, like the module
it replaces.

The export is cached in the app's cache folder (``models.paths.cache_dir``) under a
name that carries a SHA-256 of everything that shapes the graph — the weights, the
code of the module classes, input shapes and names, opset, torch version — so changed
weights re-export and unchanged ones load at once. Files are written atomically and
checked against torch by :func:`~models.ops.onnx_export.export_onnx`.

Tensors stay where they live: inputs and outputs are handed to ONNX Runtime by their
memory address (I/O binding) on the CPU as on a GPU, so a call copies nothing. The same
binding code runs on the CPU, which is what lets the tests exercise it.

On a GPU the session computes on torch's own CUDA stream (``user_compute_stream``) and is
told not to synchronise after a run, so a call queues work like any torch operation and
the host never waits for it. cuDNN picks its convolution algorithms by heuristic rather than
by timing every candidate (an exhaustive search would run again for every new input size).
TensorRT engines are built in fp16 with a timing cache, when the network is built (one
run at the spec's shapes), not on the first frame.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import logging
import re
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from models.ops.device_faults import onnxruntime_error
from models.ops.threads import thread_budget
from models.paths import cache_dir
from models.ops.onnx_export import OPSET, OnnxSpec, export_onnx

log = logging.getLogger(__name__)

TORCH, ONNXRUNTIME = "torch", "onnxruntime"
#: What can run a stage's learned networks.
RUNTIMES = (TORCH, ONNXRUNTIME)
#: GPU providers, preferred first; TensorRT hands the nodes it cannot run to CUDA, CUDA to the CPU.
TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
#: Part of every cache key: bump it when the way files are exported changes.
CACHE_VERSION = 2
INSTALL_GPU = ("replace onnxruntime with onnxruntime-gpu (pip uninstall -y onnxruntime && pip install "
               "onnxruntime-gpu; see 'Installing for a GPU' in the README)")


class RuntimeUnavailable(ValueError):
    """ONNX Runtime, or the provider a device needs, is not installed; the message says what to install."""


def _onnxruntime() -> Any:
    """ONNX Runtime, once it is known that the graphs can be written too (torch's exporter needs ``onnx``)."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailable("the onnxruntime package is not installed; pip install onnxruntime "
                                 "(onnxruntime-gpu for an NVIDIA GPU)") from None
    if importlib.util.find_spec("onnx") is None:
        raise RuntimeUnavailable("the onnx package, which writes the networks' graphs, is not installed; "
                                 "pip install onnx")
    return onnxruntime


def providers_for(device: str | torch.device, tensorrt: bool = True) -> list[str]:
    """The execution providers a session for ``device`` asks for, best first.

    ``tensorrt=False`` leaves TensorRT out (it builds an engine per input shape, which a graph
    whose size changes every frame cannot afford). Raises :class:`RuntimeUnavailable` when
    onnxruntime or its GPU providers are missing.
    """
    ort = _onnxruntime()
    kind = torch.device(device).type
    if kind == "cpu":
        return [CPU]
    if kind != "cuda":
        raise RuntimeUnavailable(f"ONNX Runtime runs the networks on cpu or cuda, not on {kind}")
    available = ort.get_available_providers()
    gpu = [p for p in ((TENSORRT, CUDA) if tensorrt else (CUDA,)) if p in available]
    if not gpu:
        raise RuntimeUnavailable(f"this onnxruntime has no CUDA provider for the GPU; {INSTALL_GPU}")
    return [*gpu, CPU]


def runtime_networks(specs: Sequence[OnnxSpec], runtime: str, device: str,
                     cache: Path | None = None) -> dict[str, OnnxRuntimeNetwork]:
    """What a stage calls per frame instead of its torch modules, by spec name.

    Empty for ``torch`` (the stage keeps calling its modules); one stand-in per spec for
    ``onnxruntime``. This is the one place where a stage's specs become ONNX Runtime sessions.
    """
    if runtime == TORCH:
        return {}
    if runtime != ONNXRUNTIME:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return {spec.name: OnnxRuntimeNetwork(spec, device, cache) for spec in specs}


def providers_of(*models: Any) -> dict[str, str]:
    """{network name: the provider that runs it} of stages built with the onnxruntime runtime (for reports)."""
    return {name: net.provider for model in models
            for name, net in (getattr(model, "onnx_networks", None) or {}).items()}


def _source_files(module: torch.nn.Module) -> list[Path]:
    """The files that define the module's classes (torch's own are covered by its version)."""
    files = set()
    for m in module.modules():
        name = type(m).__module__
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and not name.startswith("torch."):
            files.add(Path(path))
    return sorted(p for p in files if p.is_file())


def graph_digest(spec: OnnxSpec, opset: int = OPSET) -> str:
    """SHA-256 of everything that shapes the exported graph of ``spec`` (the batch size does not: it is dynamic)."""
    h = hashlib.sha256()
    shapes = tuple((1, *shape[1:]) for shape in spec.input_shapes)
    h.update(repr((CACHE_VERSION, spec.name, shapes, spec.input_names, spec.output_names, spec.dynamic_size,
                   opset, torch.__version__)).encode())
    for path in _source_files(spec.module):  # an edited forward() must not load a stale graph
        h.update(path.read_bytes())
    for key, tensor in spec.module.state_dict().items():
        h.update(f"{key} {tensor.dtype} {tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _binding(device: torch.device) -> tuple[str, int]:
    """ONNX Runtime's (device_type, device_id) for memory on a torch device."""
    if device.type == "cuda":
        return "cuda", device.index if device.index is not None else torch.cuda.current_device()
    return "cpu", 0


def gpu_provider_options(device: torch.device, engines: Path) -> dict[str, dict[str, Any]]:
    """Each provider's options for a session on ``device``; ``engines``: the TensorRT engine and timing caches."""
    if device.type != "cuda":
        return {TENSORRT: {}, CUDA: {}, CPU: {}}
    index = _binding(device)[1]
    # torch's current stream on that device: the session's kernels queue behind torch's work and before its next.
    stream = {"user_compute_stream": str(torch.cuda.current_stream(index).cuda_stream)}
    return {TENSORRT: {"device_id": index, **stream, "trt_fp16_enable": True,
                       "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
                       "trt_timing_cache_enable": True, "trt_timing_cache_path": str(engines)},
            CUDA: {"device_id": index, **stream, "cudnn_conv_algo_search": "HEURISTIC"},
            CPU: {}}


def _reason(exc: Exception) -> str:
    """First line of an onnxruntime error, without its ``[ONNXRuntimeError] : N : KIND :`` prefix."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*([A-Z_]+\s*:\s*)?", "", lines[0] if lines else "")
    return (text or type(exc).__name__)[:200]


class OnnxRuntimeNetwork:
    """Stands in for ``spec.module``: ``net(*tensors)`` returns what ``spec.module(*tensors)`` does, from ONNX Runtime.

    ``device`` is where the stage's tensors live ("cpu" or "cuda"); the session runs there with the best
    provider this onnxruntime offers, and :attr:`provider` says which one actually runs. ``cache`` is the
    folder for the exports (default: ``<cache_dir>/onnx``). Inputs of another height and width than the
    spec's get a graph of their own (exported on first use and cached) unless the spec's size is dynamic.
    """

    def __init__(self, spec: OnnxSpec, device: str | torch.device = "cpu", cache: Path | None = None,
                 opset: int = OPSET) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.opset = opset
        self.cache = Path(cache) if cache is not None else cache_dir() / "onnx"
        # TensorRT builds an engine for each new input shape: fine for fixed sizes, not for one per frame.
        self._providers = providers_for(self.device, tensorrt=spec.dynamic_size is None)
        self._lock = threading.Lock()
        self._sessions: dict[tuple | None, Any] = {}
        # Built now, so that a missing package or a failed export shows when the stage is created.
        session = self._session(tuple(spec.input_shapes))
        #: The execution provider that runs the graph (it may differ from the one asked for).
        self.provider: str = session.get_providers()[0]
        # Tensors are bound where the session runs: GPU memory for the GPU providers, else host memory.
        self._session_device = self.device if self.provider in (TENSORRT, CUDA) else torch.device("cpu")
        if self.provider == TENSORRT:  # build the engine now, not on a frame or in a predictor thread
            self(*(torch.zeros(shape, device=self.device) for shape in spec.input_shapes))
        if self.provider != self._providers[0]:
            log.warning("onnxruntime could not start %s; %s runs on %s", self._providers[0], spec.name,
                        self.provider)
        log.info("%s runs on ONNX Runtime (%s)", spec.name, self.provider)

    # --- the graph files and sessions ------------------------------------------------------------
    def path(self, spec: OnnxSpec) -> Path:
        """Where the export of ``spec`` is cached."""
        return self.cache / f"{spec.name}-{graph_digest(spec, self.opset)[:24]}.onnx"

    def _session(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        """The session for inputs of these shapes (one for all sizes when the spec's size is dynamic)."""
        key = None if self.spec.dynamic_size else tuple(s[1:] for s in shapes)
        session = self._sessions.get(key)
        if session is None:
            with self._lock:  # two streams' predictors may meet a new size at once: export it once
                session = self._sessions.get(key)
                if session is None:
                    spec = self.spec
                    if key is not None and key != tuple(s[1:] for s in spec.input_shapes):
                        spec = dataclasses.replace(spec, input_shapes=tuple((1, *s) for s in key))
                    session = self._sessions[key] = self._load(spec)
        return session

    def _load(self, spec: OnnxSpec) -> Any:
        """A session on the cached export of ``spec``, exporting it first when it is missing or unusable."""
        path = self.path(spec)
        session, problem = self._open(path, spec) if path.is_file() else (None, "")
        if session is None:
            if problem:
                log.info("re-exporting %s: the cached %s %s", spec.name, path.name, problem)
            self.cache.mkdir(parents=True, exist_ok=True)
            # The export traces on CPU tensors and sets float/eval mode: never on the module the stage runs,
            # and outside inference mode (a lazy export happens inside a stage's inference_mode predict).
            with torch.inference_mode(False), torch.no_grad():
                module = copy.deepcopy(spec.module).cpu()
                diff = export_onnx(dataclasses.replace(spec, module=module), path, self.opset)
            log.info("exported %s to %s (ONNX Runtime vs torch max difference %.1e)", spec.name, path, diff)
            session, problem = self._open(path, spec)
            if session is None:
                raise RuntimeUnavailable(f"ONNX Runtime cannot run {spec.name}: the fresh export {problem}")
        return session

    def _open(self, path: Path, spec: OnnxSpec) -> tuple[Any | None, str]:
        """(a session on ``path``, "") or (None, what is wrong) when the file does not load or is not ``spec``'s."""
        ort = _onnxruntime()
        options = ort.SessionOptions()
        # The network it replaces ran on torch's share of the cores; ORT would otherwise take them all.
        options.intra_op_num_threads = thread_budget().torch
        # Errors only: the CUDA provider warns about every shape operator it leaves to the CPU; a fallback
        # to another provider is logged here instead (see __init__).
        options.log_severity_level = 3
        engines = self.cache / "tensorrt"
        provider_options = gpu_provider_options(self.device, engines)
        if TENSORRT in self._providers:
            engines.mkdir(parents=True, exist_ok=True)
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=self._providers,
                                           provider_options=[provider_options[p] for p in self._providers])
        except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no narrower base
            return None, f"does not load ({_reason(exc)})"
        names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
        if names != (spec.input_names, spec.output_names):
            return None, f"has inputs {names[0]} and outputs {names[1]}"
        return session, ""

    # --- running ---------------------------------------------------------------------------------
    @staticmethod
    def _outputs_for(session: Any, shapes: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
        """The output shapes for inputs of ``shapes``, from the session's shape inference: every output
        dimension is a number or one of the inputs' named axes (``export_onnx`` names batch, height, width)."""
        dims = {symbol: value for arg, shape in zip(session.get_inputs(), shapes)
                for symbol, value in zip(arg.shape, shape) if isinstance(symbol, str)}
        return [tuple(d if isinstance(d, int) else dims[d] for d in o.shape) for o in session.get_outputs()]

    def _run(self, session: Any, binding: Any) -> None:
        options = None
        if self._session_device.type == "cuda":
            # The session computes on torch's stream (gpu_provider_options): queued after the inputs, before
            # whatever torch queues next. Nothing to wait for, before or after.
            options = _onnxruntime().RunOptions()
            options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        try:
            session.run_with_iobinding(binding, options)
        except Exception as exc:  # see _open
            raise onnxruntime_error(exc, f"{self.spec.name} failed in ONNX Runtime ({_reason(exc)})",
                                    self._session_device.type == "cuda") from None

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.spec.input_names):
            raise TypeError(f"{self.spec.name} takes {len(self.spec.input_names)} tensors "
                            f"({', '.join(self.spec.input_names)}), not {len(inputs)}")
        # ORT reads the memory in place: contiguous float32 where the session runs (no copy when it already is).
        # The list keeps any converted copy alive until the run is over.
        feeds = [x.detach().to(self._session_device, torch.float32).contiguous() for x in inputs]
        shapes = tuple(tuple(x.shape) for x in feeds)
        session = self._session(shapes)
        outputs = [torch.empty(shape, dtype=torch.float32, device=self._session_device)
                   for shape in self._outputs_for(session, shapes)]
        binding = session.io_binding()
        where = _binding(self._session_device)
        for name, x in zip(self.spec.input_names, feeds):
            binding.bind_input(name, *where, np.float32, list(x.shape), x.data_ptr())
        for name, y in zip(self.spec.output_names, outputs):
            binding.bind_output(name, *where, np.float32, list(y.shape), y.data_ptr())
        self._run(session, binding)
        # Fresh outputs every call: a caller may still hold the previous ones. The move is a no-op unless ORT
        # fell back to the CPU for a GPU stage.
        outputs = [y.to(self.device) for y in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def __repr__(self) -> str:
        return f"OnnxRuntimeNetwork({self.spec.name!r}, {self.provider})"
