"""What every training entry point shares: processes, the learning-rate schedule, checkpoints.

``torchrun`` starts one process per device; :func:`init_distributed` joins them. A run's
state — its modules, optimisers and schedules by name, plus the step, the time spent and
the history — lives in one :class:`Checkpoint`, written atomically every epoch, so
``--resume`` continues where a stopped run left off.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from models.ops.files import atomic_path
from models.paths import cache_dir


def add_run_options(p: argparse.ArgumentParser, epoch_help: str = "steps between checkpoints") -> None:
    """The options every trainer has: checkpoints, resuming, data-loader workers, the seed."""
    p.add_argument("--epoch-steps", type=int, default=100, help=epoch_help)
    p.add_argument("--checkpoint", type=Path, help="training state file (default: in the cache folder)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0)


def add_record_options(p: argparse.ArgumentParser, network: str, evaluation_note: str = "") -> None:
    """``--record EVAL.json`` (no training: enter ``--out`` in the manifest), ``--default``, ``--notes``."""
    p.add_argument("--record", type=Path, metavar="EVAL_JSON",
                   help="no training: record --out in weights/MANIFEST.json with this evaluation "
                        f"(written by models.training.evaluate{evaluation_note})")
    p.add_argument("--default", action="store_true", help=f"with --record: the default {network} weights")
    p.add_argument("--notes", help="with --record: why this recipe, what else was tried")


def parse_run_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; training (unless ``--record``) needs ``--data``; the checkpoint defaults to the cache folder."""
    args = p.parse_args(argv)
    if not getattr(args, "record", None) and not args.data:
        p.error("--data is required for training")
    args.checkpoint = args.checkpoint or cache_dir() / "training" / f"{args.out.stem}.ckpt"
    return args


def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); a process group only under torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return (dist.get_rank() if world > 1 else 0), world, torch.device(f"cuda:{local}" if cuda else "cpu")


def finish_distributed(world: int) -> None:
    """Leave the process group; every rank waits first, as rank 0 may still be writing the weights."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay of the learning rate from its initial value to 0 over ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def machine(device: torch.device) -> str:
    """The machine a run trained on, for its record."""
    if device.type == "cpu":
        return f"{os.cpu_count()}-core {platform.machine()} CPU, no GPU"
    return torch.cuda.get_device_name(device)


class Checkpoint:
    """A run's resumable state: ``objects`` (anything with ``state_dict``) by name, step, time, history."""

    def __init__(self, path: Path, **objects) -> None:
        self.path, self.objects = path, objects
        self.step, self.history = 0, []
        self._start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def resume(self, device: torch.device) -> None:
        """Load the saved state when the file exists (weights_only: a checkpoint is data, never code)."""
        if not self.path.is_file():
            return
        state = torch.load(self.path, map_location=device, weights_only=True)
        for name, obj in self.objects.items():
            obj.load_state_dict(state[name])
        self.step, self.history = state["step"], state["history"]
        self._start = time.monotonic() - state["elapsed"]

    def save(self) -> None:
        state = {name: obj.state_dict() for name, obj in self.objects.items()}
        state.update(step=self.step, elapsed=self.elapsed, history=self.history)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)


def train_or_record(args, train: Callable[..., dict], record_weights: Callable[..., dict]) -> None:
    """A trainer's ``main``: with ``--record EVAL.json``, enter ``--out`` in the manifest with those
    figures (``record_weights(path, evaluation, default, notes)``); otherwise train and print the record."""
    if args.record:
        entry = record_weights(args.out, json.loads(args.record.read_text()), args.default, args.notes)
        print(f"{entry['file']}: {entry['sha256']} ({entry['bytes']} bytes)")
        return
    record = train(args)
    print(json.dumps({k: v for k, v in record.items() if k not in ("history", "train_files")}, indent=1))
