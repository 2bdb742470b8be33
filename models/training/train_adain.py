"""Train the complete-background AdaIN harmonizer (Xing et al., ACM MM 2022, Eq. 3).

    OMP_NUM_THREADS=1 python -m models.training.train_adain --data corpus \\
        --out weights/adain.safetensors                      # the shipped weights (CPU)
    torchrun --nproc-per-node 4 -m models.training.train_adain --data corpus --out adain.safetensors
    python -m models.training.train_adain --out weights/adain.safetensors --record eval.json --default

Pairs are synthesised from real photos exactly as for the Harmonizer
(``synthesis.synthesize``: the person region pushed out of harmony; target = the
real photo; a share of harmonious samples whose target is the input itself), with
the complete background filled in behind the person. Loss (Eq. 3):
``λ_rec · L1 + L_adv``. The paper's L1 is over the image; ours is averaged over the
foreground only (the background passes unchanged by construction), so a small
person weighs as much as a large one, as in the foreground-normalised fMSE the
evaluation reports. L_adv is an LSGAN loss from a small PatchGAN that sees the
image and its mask (the paper adopts DoveNet's; a least-squares patch critic is
the cheap, stable choice for CPU batches). Adam (β1 0.5), cosine decay;
checkpoints every ``--epoch-steps`` and ``--resume``; DDP under torchrun.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from models.harmonizers.adain.network import AdainNet
from models.ops.arguments import ranged
from models.ops.checkpoint import load_state_dict_file, load_strict
from models.training import command
from models.training.data import source_name, training_set
from models.training.loop import (IMAGE_SIDE, Checkpoint, add_record_options, add_run_options, adversarial_step,
                                  cosine_schedule, distributed_loader, finish_distributed, init_distributed, machine,
                                  parse_run_args, run_epochs, save_weights, train_or_record)
from models.training.synthesis import synthesize


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.train_adain", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append",
                   help="'corpus', 'registry', an image folder or an iHarmony4 root (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="where to write the .safetensors weights (fp16)")
    p.add_argument("--size", type=IMAGE_SIDE,
                   default=128, help="training input size (the app predicts at 128)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=ranged(1, 4096, whole=True), default=16, help="channels of the first level")
    p.add_argument("--levels", type=ranged(1, 8, whole=True), default=5, help="stride-2 encoder levels")
    p.add_argument("--rec-weight", type=float, default=100.0, help="λ_rec of the foreground L1 (Eq. 3)")
    p.add_argument("--adv-weight", type=float, default=1.0, help="weight of the LSGAN term (0: L1 only)")
    p.add_argument("--identity-fraction", type=float, default=0.2,
                   help="share of harmonious training composites (the real photo), so the network "
                        "learns to change nothing when nothing is wrong")
    p.add_argument("--init", type=Path, help="start from these AdaIN weights (fine-tuning)")
    p.add_argument("--no-person-masks", action="store_true", help="random shapes only (no MediaPipe)")
    add_run_options(p, 3000)
    add_record_options(p, "AdaIN")
    args = parse_run_args(p, argv)
    return args


class PatchCritic(nn.Module):
    """LSGAN PatchGAN: image (3) + mask (1) → a map of realness scores, one per ~22-pixel patch."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers, cin = [], 4
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers, nn.Conv2d(cin, 1, 3, 1, 1))

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.body(torch.cat([image * 2 - 1, mask], 1))


def foreground_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean |pred − target| over the (soft) foreground of each sample, averaged over the batch."""
    weight = mask.expand_as(pred)
    return ((pred - target).abs() * weight).sum((1, 2, 3)).div(weight.sum((1, 2, 3)).clamp(min=1)).mean()


def _net(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def train_step(model: nn.Module, critic: nn.Module, batch: dict[str, Tensor], device: torch.device,
               args: argparse.Namespace) -> tuple[Tensor, Tensor, dict[str, float]]:
    """(generator loss, critic loss, logged figures) of one batch; the caller steps the optimisers."""
    real, mask, synth, background = (batch[k].to(device) for k in ("real", "mask", "args", "background"))
    composite = synthesize(real, mask, synth)[0]
    stats = _net(model).background_stats(background)
    harmonized = model(composite, mask, stats)
    rec = foreground_l1(harmonized, real, mask)
    loss = args.rec_weight * rec
    critic_loss = torch.zeros((), device=device)
    if args.adv_weight:
        critic.requires_grad_(False)  # the generator's term needs no gradient for the critic's weights
        loss = loss + args.adv_weight * ((critic(harmonized, mask) - 1) ** 2).mean()
        critic.requires_grad_(True)
        critic_loss = 0.5 * (((critic(real, mask) - 1) ** 2).mean() + (critic(harmonized.detach(), mask) ** 2).mean())
    return loss, critic_loss, {"l1": float(rec.detach()), "input_l1": float(foreground_l1(composite, real, mask))}


def train(args: argparse.Namespace) -> dict:
    """Run training; returns the training record (also stored in the weights' metadata)."""
    rank, world, device = init_distributed()
    torch.manual_seed(args.seed)
    items, dataset = training_set(args, world, with_background=True)
    sampler, loader = distributed_loader(dataset, args, world, rank)

    net = AdainNet(args.width, args.levels)
    if args.init:
        load_strict(net, {k: v.float() for k, v in load_state_dict_file(args.init, "initial weights").items()},
                    "AdaIN harmonizer network", args.init)
    net, critic = net.to(device).float(), PatchCritic().to(device)
    model = DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=args.lr, betas=(0.5, 0.999))
    schedules = [cosine_schedule(o, args.steps) for o in (optimizer, critic_optimizer)]
    checkpoint = Checkpoint(args.checkpoint, model=net, critic=critic, optimizer=optimizer,
                            critic_optimizer=critic_optimizer, schedule=schedules[0], critic_schedule=schedules[1])
    if args.resume:
        checkpoint.resume(device)

    def one_step(batch: dict[str, Tensor], done: int) -> dict[str, float]:
        loss, critic_loss, figures = train_step(model, critic, batch, device, args)
        adversarial_step(loss, critic_loss, optimizer, critic, critic_optimizer, world, train_critic=args.adv_weight > 0)
        for schedule in schedules:
            schedule.step()
        return {**figures, "critic": float(critic_loss.detach())}

    run_epochs(args, checkpoint, loader, dataset, sampler, rank, one_step,
               lambda f: {"l1": f"{f['l1']:.4f}", "input_l1": f"{f['input_l1']:.4f}"},
               before_epoch=lambda done: net.train())
    record = {
        "variant": "adain", "size": args.size, "steps": args.steps, "batch_size": args.batch_size,
        "processes": world, "lr": args.lr, "schedule": "Adam (beta1 0.5), cosine decay to 0",
        "loss": f"{args.rec_weight} x foreground L1 + {args.adv_weight} x LSGAN PatchGAN",
        "init": args.init.name if args.init else None, "identity_fraction": args.identity_fraction,
        "data": args.data, "train_images": len(items), "train_groups": len({it.group for it in items}),
        "train_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see --data",
        "person_masks": dataset.people, "seconds": round(checkpoint.elapsed, 1),
        "machine": machine(device), "history": checkpoint.history,
    }
    if rank == 0:
        save_weights(net, args.out, record, net.options())
    finish_distributed(world)
    return record


def record_weights(weights: Path, evaluation: dict, default: bool, notes: str | None = None) -> dict:
    """Insert ``weights`` into the manifest beside it: the shared entry, with this architecture."""
    from models.harmonizers.adain.stage import ARCHITECTURE, INPUT_SIZE
    from models.training.manifest import record_in_manifest

    return record_in_manifest(weights, evaluation, default, notes, architecture={
        "class": ARCHITECTURE,
        "options": AdainNet.from_checkpoint(weights).options(),
        "input_size": INPUT_SIZE,
        "normalisation": "composite and background RGB in [0, 1] (mapped to [-1, 1] inside); mask in [0, 1]",
        "outputs": "the harmonized composite, RGB in [0, 1] (composite + mask x predicted residual)",
    })


def main(argv: list[str] | None = None) -> None:
    train_or_record(parse_args(argv), train, record_weights)


if __name__ == "__main__":
    command.run(main)
