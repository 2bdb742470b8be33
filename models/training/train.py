"""Train a Harmonizer-Lite argument network by self-supervised synthesis.

    python -m models.training.train --data registry --variant lite \\
        --size 128 --final-size 256 --final-steps 140 --steps 760 \\
        --out weights/harmonizer-lite0.safetensors          # the shipped weights (CPU, ~15 min)
    torchrun --nproc-per-node 4 -m models.training.train --data /data/iHarmony4 --variant lite-bg …

Each step synthesises inharmonious composites from real images (``synthesis``),
predicts the six arguments, runs the forward filter chain returning every step,
and applies the dynamic cascade loss (``losses``). Adam, cosine learning-rate
decay. BatchNorm keeps its ImageNet statistics (eval mode) because CPU batches
are small; ``--train-blocks`` limits which trunk blocks learn. Checkpoints are
written every epoch and ``--resume`` continues from the last one.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models.harmonizers.harmonizer.filters import FILTER_ORDER, apply_filters
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet, build_lite, normalise_rgb
from models.ops.arguments import ranged
from models.ops.checkpoint import load_state_dict_file, load_strict
from models.training import command
from models.training.data import source_name, training_set
from models.training.loop import (IMAGE_SIDE, Checkpoint, add_run_options, cosine_schedule, distributed_loader,
                                  finish_distributed, init_distributed, machine, optimiser_step, parse_run_args,
                                  print_record, run_epochs, save_weights)
from models.training.losses import cascade_loss
from models.training.synthesis import synthesize

VARIANTS = {"lite": False, "lite-bg": True}  # name → complete_background
N_BLOCKS = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", required=True,
                   help="'registry', an image folder or an iHarmony4 root (repeatable)")
    p.add_argument("--variant", choices=VARIANTS, default="lite",
                   help="lite: composite + mask; lite-bg: also the complete background")
    p.add_argument("--out", type=Path, required=True, help="where to write the .safetensors weights")
    p.add_argument("--size", type=IMAGE_SIDE,
                   default=256, help="training input size (the app predicts at 256)")
    p.add_argument("--final-size", type=IMAGE_SIDE,
                   help="input size of the last --final-steps steps: a cheap "
                   "low-resolution phase, then adaptation to the size the app predicts at")
    p.add_argument("--final-steps", type=ranged(0, 10**7, whole=True), default=0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--train-blocks", type=int, default=-1,
                   help="how many of the 16 trunk blocks (from the end) learn; -1: all. "
                        "Stems, head and regressor always learn")
    p.add_argument("--no-person-masks", action="store_true", help="random shapes only (no MediaPipe)")
    p.add_argument("--identity-fraction", type=float, default=0.25,
                   help="share of training composites left harmonious (the real photo), so the network "
                        "learns to change nothing when nothing is wrong (default 0.25)")
    p.add_argument("--identity-weight", type=float, default=0.0,
                   help="weight of an extra L1 pull of identity samples' arguments to zero (default 0: "
                        "their image loss is enough)")
    p.add_argument("--init", type=Path, help="start from these Harmonizer-Lite weights (fine-tuning)")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                   help="start from the ImageNet EfficientNet-Lite0 backbone")
    add_run_options(p, 1000)
    args = parse_run_args(p, argv)
    return args


def set_trainable(net: HarmonizerLiteNet, train_blocks: int) -> str:
    """Freeze the trunk blocks before the last ``train_blocks``; returns a description."""
    first = 0 if train_blocks < 0 else N_BLOCKS - min(train_blocks, N_BLOCKS)
    backbone = net.backbone
    for p in net.parameters():
        p.requires_grad_(True)
    for block in backbone._blocks[:first]:
        block.requires_grad_(False)
    if backbone._conv_stem is not None:
        # The background path runs without gradient (see predict), so its RGB stem stays ImageNet's.
        backbone._conv_stem.requires_grad_(False)
        backbone._bn0.requires_grad_(False)
    frozen = f"trunk blocks 0-{first - 1} frozen" if first else "whole trunk trained"
    return f"{frozen}; BatchNorm statistics frozen at ImageNet values"


def train_mode(net: nn.Module) -> None:
    """Training mode except BatchNorm, whose running statistics stay fixed."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def predict(model: nn.Module, composite: torch.Tensor, mask: torch.Tensor,
            background: torch.Tensor | None) -> torch.Tensor:
    """Raw arguments at the training size; the background path runs without gradient.

    Detaching the background embedding saves a second backward pass through the
    trunk; the trunk is still tuned through the composite path it shares.
    """
    net = model.module if isinstance(model, DistributedDataParallel) else model
    embedding = None
    if net.complete_background:
        with torch.no_grad():
            embedding = net.backbone.embed_rgb(normalise_rgb(background))
    return model(composite, mask, embedding)


#: Lower bound of the dynamic loss's per-sample normaliser (see ``losses.dynamic_loss``): about the
#: first-step loss of a typical synthetic composite, so identity samples weigh like the others.
NORM_FLOOR = 0.05


def train_step(model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device,
               identity_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, per-step losses, mean predicted arguments on identity samples) of one batch; the caller
    steps the optimiser.

    On identity samples (harmonious composites) the right arguments are known exactly — all
    zero — so besides the image loss they are pulled to zero directly with ``identity_weight``.
    """
    real, mask, args = (batch[k].to(device) for k in ("real", "mask", "args"))
    background = batch["background"].to(device) if "background" in batch else None
    composite, targets = synthesize(real, mask, args)
    predicted = predict(model, composite, mask, background)
    outputs = apply_filters(composite, predicted, mask, return_all=True)
    identity = batch.get("identity", torch.zeros(len(real))).to(device)
    loss, steps = cascade_loss(outputs, targets, mask, NORM_FLOOR if identity.any() else 0.0)
    clamped = predicted.clamp(-1, 1)
    bias = (clamped * identity[:, None]).sum(0) / identity.sum().clamp(min=1)
    if identity_weight and identity.any():
        loss = loss + identity_weight * (clamped.abs() * identity[:, None]).sum() / identity.sum() / len(FILTER_ORDER)
    return loss, steps, bias.detach()


def size_at(args: argparse.Namespace, step: int) -> int:
    """Training input size at ``step`` (``--final-size`` for the last ``--final-steps``)."""
    return args.final_size if args.final_size and step >= args.steps - args.final_steps else args.size


def train(args: argparse.Namespace) -> dict:
    """Run training; returns the training record (also stored in the weights' metadata)."""
    rank, world, device = init_distributed()
    torch.manual_seed(args.seed)
    items, dataset = training_set(args, world, with_background=VARIANTS[args.variant])
    sampler, loader = distributed_loader(dataset, args, world, rank)

    net = build_lite(VARIANTS[args.variant], pretrained=args.pretrained and not args.init)
    if args.init:  # fine-tune a trained network (e.g. the shipped one) instead of starting from ImageNet
        load_strict(net, load_state_dict_file(args.init, "initial weights"), "Harmonizer-Lite network", args.init)
    net = net.to(device).float()
    frozen = set_trainable(net, args.train_blocks)
    model = DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=args.lr)
    schedule = cosine_schedule(optimizer, args.steps)
    checkpoint = Checkpoint(args.checkpoint, model=net, optimizer=optimizer, schedule=schedule)
    if args.resume:
        checkpoint.resume(device)

    def before_epoch(done: int) -> None:
        dataset.size = size_at(args, done)
        train_mode(net)

    def one_step(batch: dict[str, torch.Tensor], done: int) -> dict:
        loss, steps, bias = train_step(model, batch, device, args.identity_weight)
        optimiser_step(loss, optimizer)
        schedule.step()
        # The arguments predicted for harmonious composites should stay near zero: watch their bias.
        return {"final_step_loss": float(steps[-1]), "first_step_loss": float(steps[0]),
                "identity_bias": bias.cpu().numpy()}

    run_epochs(args, checkpoint, loader, dataset, sampler, rank, one_step,
               lambda f: {"final_step_loss": f"{f['final_step_loss']:.4f}"}, before_epoch=before_epoch,
               epoch_over=lambda done: done % args.epoch_steps == 0 or size_at(args, done) != dataset.size)
    record = {
        "variant": args.variant, "size": args.size, "steps": args.steps,
        "final_size": args.final_size, "final_steps": args.final_steps if args.final_size else 0,
        "batch_size": args.batch_size, "processes": world, "lr": args.lr, "schedule": "Adam, cosine decay to 0",
        "frozen": frozen, "train_blocks": args.train_blocks, "pretrained": args.pretrained,
        "init": args.init.name if args.init else None,
        "identity_fraction": args.identity_fraction, "identity_weight": args.identity_weight,
        "data": args.data, "train_images": len(items), "train_groups": len({it.group for it in items}),
        "train_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see --data",
        "person_masks": dataset.people, "seconds": round(checkpoint.elapsed, 1),
        "machine": machine(device), "history": checkpoint.history,
    }
    if rank == 0:
        save_weights(net, args.out, record)
    finish_distributed(world)
    return record


def main(argv: list[str] | None = None) -> None:
    print_record(train(parse_args(argv)))


if __name__ == "__main__":
    command.run(main)
