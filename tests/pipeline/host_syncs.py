"""Counting what would stall a GPU, with CPU tensors.

On CUDA a device-to-host copy, a tensor read as a Python number or truth value, a shape that
depends on the data (``nonzero``, boolean indexing) and an explicit synchronize all make the host
wait for the GPU. With CPU tensors none of these costs anything, so the tensor path cannot be timed
for them here; it can be watched. Tensors that the pipeline puts "on the device" are made
:class:`OnDevice` (a torch subclass that every operation on them passes on), and every such call
on one of them is recorded with the place in the project's code that made it.
"""
from __future__ import annotations

import contextlib
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

ROOT = Path(__file__).resolve().parents[2]

#: Tensor methods that hand a device tensor's contents to the host (each one a copy and a wait on CUDA).
READS = {"cpu", "numpy", "item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero",
         "masked_select", "unique", "bincount"}
FUNCTIONS = {torch.nonzero, torch.masked_select, torch.unique, torch.bincount}


def _is_host(device) -> bool:
    """Whether a ``.to``/``copy_`` target means host memory (on CPU tensors: any explicit "cpu")."""
    return device is not None and torch.device(device).type == "cpu"


def _to_target(args, kwargs):
    """The device a ``Tensor.to`` call names, if any."""
    if "device" in kwargs:
        return kwargs["device"]
    for a in args[1:2]:
        if isinstance(a, (str, torch.device)):
            return a
    return None


def _boolean_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class OnDevice(torch.Tensor):
    """A CPU tensor standing for one in GPU memory; its host reads go to the active :class:`Recorder`."""

    recorder: "Recorder | None" = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = cls.recorder
        if rec is not None and rec.watching():
            name = getattr(func, "__name__", "")
            if name in READS or func in FUNCTIONS:
                rec.note(name)
            elif name == "to" and _is_host(_to_target(args, kwargs)):
                rec.note("to(cpu)")
            elif name == "copy_" and not isinstance(args[0], OnDevice) and isinstance(args[1], OnDevice):
                rec.note("copy_ to host")
            elif name == "__getitem__" and _boolean_index(args[1]):
                rec.note("boolean index")
        return super().__torch_function__(func, types, args, kwargs)


@dataclass
class Recorder:
    """Host reads of :class:`OnDevice` tensors made by the thread inside :meth:`watch`, as (what, file:line)
    in the project. Other threads (a harmonizer's predictor) are not the frame's: they are not recorded."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    _thread: int | None = None

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[tuple[str, str]]]:
        """Record this thread's host reads until the block ends; yields the list they go to (fresh)."""
        self.calls = []
        self._thread = threading.get_ident()
        try:
            yield self.calls
        finally:
            self._thread = None

    def watching(self) -> bool:
        return self._thread == threading.get_ident()

    def note(self, what: str) -> None:
        self.calls.append((what, _caller()))


def _caller() -> str:
    """The innermost frame of the project's own code (not tests, not torch)."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / "tests"):
            return f"{path.relative_to(ROOT)}:{frame.lineno} ({frame.name})"
    return "outside the project"


def on_device(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as an :class:`OnDevice` one (same memory)."""
    return tensor.as_subclass(OnDevice)


@contextlib.contextmanager
def recording(monkeypatch) -> Iterator[Recorder]:
    """Every upload through ``models.ops.tensor_image`` lands :class:`OnDevice`, and explicit synchronizes
    are recorded too. Watch code with ``recorder.watch()``."""
    from models.ops import tensor_image

    rec = Recorder()
    original = tensor_image.to_device

    def marked(array, device, dtype):
        return on_device(original(array, device, dtype))

    monkeypatch.setattr(tensor_image, "to_device", marked)
    for owner, name in ((torch.cuda, "synchronize"), (torch.cuda.Event, "synchronize"),
                        (torch.cuda.Stream, "synchronize")):
        real = getattr(owner, name)

        def sync(*args, _real=real, _name=name, **kwargs):
            if rec.watching():
                rec.note(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, sync)
    OnDevice.recorder = rec
    try:
        yield rec
    finally:
        OnDevice.recorder = None
