"""What every training entry point shares: processes, the learning-rate schedule, checkpoints,
the epoch loop and the weights file.

``torchrun`` starts one process per device; :func:`init_distributed` joins them. A run's
state — its modules, optimisers and schedules by name, plus the step, the time spent and
the history — lives in one :class:`Checkpoint`, written atomically every epoch, so
``--resume`` continues where a stopped run left off. :func:`run_epochs` is the loop around a
trainer's own step; :func:`save_weights` writes the result.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from models.ops.arguments import ranged
from models.ops.checkpoint import save_safetensors
from models.ops.files import atomic_path
from models.paths import cache_dir


#: Argument types of the trainers: a count of steps, and an image or crop side in pixels.
STEP_COUNT = ranged(1, 10**7, whole=True)
IMAGE_SIDE = ranged(16, 4096, whole=True)


def add_run_options(p: argparse.ArgumentParser, steps: int, epoch_help: str = "steps between checkpoints") -> None:
    """The options every trainer has: its steps (``steps`` by default) and batch size, checkpoints, resuming,
    data-loader workers, the seed."""
    p.add_argument("--steps", type=STEP_COUNT, default=steps, help=f"optimiser steps (default {steps})")
    p.add_argument("--batch-size", type=ranged(1, 4096, whole=True), default=16, help="per process")
    p.add_argument("--epoch-steps", type=STEP_COUNT, default=100, help=epoch_help)
    p.add_argument("--checkpoint", type=Path, help="training state file (default: in the cache folder)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--workers", type=ranged(0, 256, whole=True), default=0, help="DataLoader worker processes")
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


#: What a trainer's step reports: figures to show and to average per epoch (numbers or arrays of them).
Figures = dict[str, Any]


def _mean(total: Any, n: int) -> float | list[float]:
    if np.ndim(total):
        return [round(float(v) / n, 5) for v in np.asarray(total).ravel()]
    return round(float(total) / n, 5)


def run_epochs(args: argparse.Namespace, checkpoint: Checkpoint, loader: Iterable, dataset: Any, sampler: Any,
               rank: int, step: Callable[[Any, int], Figures], show: Callable[[Figures], dict[str, str]],
               before_epoch: Callable[[int], None] = lambda done: None,
               epoch_over: Callable[[int], bool] | None = None,
               after_save: Callable[[], None] = lambda: None) -> None:
    """Train until ``args.steps``, resuming at ``checkpoint.step``: the loop every trainer shares.

    Each epoch sets the dataset's and the sampler's epoch, calls ``before_epoch(steps done)`` (train
    mode, a size schedule), then runs ``step(batch, steps done)`` — the trainer's forward, backward and
    optimiser steps, returning its figures — until ``args.epoch_steps`` steps (or ``epoch_over(steps
    done)``) have passed. The epoch's mean figures join ``checkpoint.history``; rank 0 shows
    ``show(figures)`` beside a progress bar and saves the checkpoint, then calls ``after_save()``.
    """
    from tqdm import tqdm

    done = checkpoint.step
    over = epoch_over or (lambda n: n % args.epoch_steps == 0)
    bar = tqdm(total=args.steps, initial=done, disable=rank != 0, unit="step", dynamic_ncols=True)
    while done < args.steps:
        epoch = done // args.epoch_steps
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        before_epoch(done)
        first, sums = done, {}
        for batch in loader:
            figures = step(batch, done)
            done += 1
            for key, value in figures.items():
                sums[key] = sums.get(key, 0) + value
            bar.update()
            bar.set_postfix(show(figures))
            if done >= args.steps or over(done):
                break
        checkpoint.history.append({"step": done, **{k: _mean(v, max(done - first, 1)) for k, v in sums.items()}})
        checkpoint.step = done
        if rank == 0:
            checkpoint.save()
            after_save()
    bar.close()


def save_weights(net: nn.Module, path: Path, record: dict, architecture: dict | None = None) -> None:
    """The trained network in fp16 safetensors (a copy: ``net`` keeps training precision), with the run's
    record and, for networks whose shape is configurable, their options in the file's metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"training": json.dumps(record)}
    if architecture is not None:
        metadata["architecture"] = json.dumps(architecture)
    save_safetensors(copy.deepcopy(net).half(), path, metadata)


def distributed_loader(dataset: Any, args: argparse.Namespace, world: int, rank: int) -> tuple[Any, DataLoader]:
    """(sampler, loader) of ``dataset`` for this process: each process gets its own share of every epoch."""
    sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=args.seed) if world > 1 else None
    loader = DataLoader(dataset, args.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=args.workers, drop_last=True)
    return sampler, loader


def optimiser_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def adversarial_step(loss: torch.Tensor, critic_loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                     critic: nn.Module, critic_optimizer: torch.optim.Optimizer, world: int,
                     train_critic: bool = True) -> None:
    """One GAN step: the generator's, then (``train_critic``) the critic's on the detached output. The critic
    is not wrapped in DDP — it runs several times a step, which DDP's one-forward-one-backward hooks
    forbid — so its gradients are averaged over the processes here."""
    optimiser_step(loss, optimizer)
    if not train_critic:
        return
    critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    if world > 1:
        for p in critic.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world
    critic_optimizer.step()


def train_or_record(args, train: Callable[..., dict], record_weights: Callable[..., dict]) -> None:
    """A trainer's ``main``: with ``--record EVAL.json``, enter ``--out`` in the manifest with those
    figures (``record_weights(path, evaluation, default, notes)``); otherwise train and print the record."""
    if args.record:
        entry = record_weights(args.out, json.loads(args.record.read_text()), args.default, args.notes)
        print(f"{entry['file']}: {entry['sha256']} ({entry['bytes']} bytes)")
        return
    print_record(train(args))


def print_record(record: dict) -> None:
    """A finished run's record on stdout, without its long lists (history, file names)."""
    print(json.dumps({k: v for k, v in record.items() if k not in ("history", "train_files")}, indent=1))
