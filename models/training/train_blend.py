"""Train the blending U-Net (Xing et al., ACM MM 2022, §4.2) on synthetic triplets, and on real matte errors.

    python -m models.training.train_blend --data corpus --out weights/blend-unet.safetensors \\
        --steps 3000 --batch-size 16                            # from scratch (CPU, one thread)
    python -m models.training.train_blend --data corpus --footage ../shared/eval/real-footage \\
        --init weights/blend-unet.safetensors --out tuned.safetensors   # fine-tuned on real matte errors too
    torchrun --nproc-per-node 4 -m models.training.train_blend --data corpus --foregrounds /data/matting …

Each step draws crops around the outline of triplets (``blend_data``): the source over
an old background, its imperfect matte, the complete new background and the target.
With ``--footage`` a ``--footage-share`` of them are real frames of the DAVIS sequences the
folder's split allows for training, with the matte the pipeline really gave them
(:func:`~models.training.footage.footage_shots`).
The loss is Eq. 1 (L1 plus L1 over the boundary band of the true matte) plus an L1 pull of
the refined alpha towards the true one, weighted ``--alpha-weight``: where the person's
colour equals the new background's, the image alone cannot tell whether α is right, but
the harmonizer downstream uses that α. Adam, cosine learning-rate decay, a checkpoint
every ``--epoch-steps`` steps, ``--resume`` continues.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from models.blending.blend_net import BlendUNet
from models.ops.arguments import ranged
from models.training import command
from models.training.blend_data import (WORK_LONG_SIDE, BlendTriplets, PipelineMatte, folder_foregrounds,
                                         people)
from models.training.boundary import blend_loss, boundary_band_tensor
from models.training.data import PersonMasker, collect, load_rgb, source_name
from models.training.footage import EVALUATION_SEQUENCES, TRAINING_SEQUENCES, Shot, footage_shots, sequence_clips
from models.training.loop import (IMAGE_SIDE, Checkpoint, add_run_options, cosine_schedule, distributed_loader,
                                  finish_distributed, init_distributed, machine, optimiser_step, parse_run_args,
                                  print_record, run_epochs, save_weights)

BAND_RADIUS = 6  # px at the working size (1.2 % of 512)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.train_blend", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", required=True, help="'corpus' or an image folder (repeatable): "
                   "old and new backgrounds, cut-out textures, and the people found in them")
    p.add_argument("--foregrounds", action="append", type=Path, default=[],
                   help="a matting data set folder with fg/ and alpha/ (repeatable)")
    p.add_argument("--no-people", action="store_true", help="cut-outs only: no face detection and matting of "
                   "the photos' people")
    p.add_argument("--footage", type=Path, help="a real-footage folder (DAVIS-like sequences with a mask per "
                   "frame): real frames with the pipeline's real mattes")
    p.add_argument("--footage-sequences", default=",".join(TRAINING_SEQUENCES),
                   help="comma-separated sequences of --footage to train on (default: the six the split allows)")
    p.add_argument("--footage-every", type=ranged(1, 10**4, whole=True),
                   default=3, help="use frames 0, N, 2N, … of each sequence")
    p.add_argument("--footage-share", type=float, default=0.5, help="share of the samples from --footage")
    p.add_argument("--out", type=Path, required=True, help="where to write the .safetensors weights")
    p.add_argument("--widths", type=ranged(1, 4096, whole=True), nargs=3, default=(16, 32, 64))
    p.add_argument("--init", type=Path, help="start from these blending weights (continue or fine-tune)")
    p.add_argument("--crop", type=IMAGE_SIDE,
                   default=128, help="training crop size at the working size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--band-weight", type=float, default=2.0, help="λ of Eq. 1")
    p.add_argument("--alpha-weight", type=float, default=0.25)
    add_run_options(p, 3000)
    args = parse_run_args(p, argv)
    if not 0 <= args.footage_share <= 1:
        p.error(f"--footage-share must be in [0, 1], got {args.footage_share}")
    held_out = sorted(set(args.footage_sequences.split(",")) & set(EVALUATION_SEQUENCES))
    if args.footage and held_out:
        p.error(f"{', '.join(held_out)} are kept for evaluation by the footage's split; train on others")
    return args


def real_shots(args: argparse.Namespace, matte: PipelineMatte) -> list[Shot]:
    """``--footage``'s shots at the working size, made with the pipeline's matting model (none without it)."""
    if not args.footage:
        return []
    clips = sequence_clips(args.footage, [n for n in args.footage_sequences.split(",") if n])
    return footage_shots(clips, matte.model, args.footage_every, WORK_LONG_SIDE)


def train_step(model, batch: dict[str, torch.Tensor], device: torch.device, band_weight: float,
               alpha_weight: float) -> tuple[torch.Tensor, float]:
    """(loss, band L1 of the output) of one batch; the caller steps the optimiser."""
    source, alpha, background, target, true_alpha = (
        batch[k].to(device) for k in ("source", "alpha", "background", "target", "true_alpha"))
    output, refined, _ = model(source, alpha, background)
    band = boundary_band_tensor(true_alpha, BAND_RADIUS)
    loss = blend_loss(output, target, band, band_weight) + alpha_weight * (refined - true_alpha).abs().mean()
    with torch.no_grad():
        band_l1 = float(((output - target).abs() * band).sum() / (3 * band.sum()).clamp(min=1))
    return loss, band_l1


def train(args: argparse.Namespace) -> dict:
    rank, world, device = init_distributed()
    torch.manual_seed(args.seed)
    items = collect(args.data, "train")
    photos = [load_rgb(it.real, WORK_LONG_SIDE) for it in items]
    found = [] if args.no_people else people(items, PersonMasker())
    foregrounds = found + [f for root in args.foregrounds for f in folder_foregrounds(root)]
    matte = PipelineMatte()
    shots = real_shots(args, matte)
    dataset = BlendTriplets(foregrounds, photos, train=True, length=args.epoch_steps * args.batch_size * world,
                            seed=args.seed, crop=args.crop, matting=matte.raw, refine=matte.refine,
                            shots=shots, shot_share=args.footage_share)
    sampler, loader = distributed_loader(dataset, args, world, rank)
    net = (BlendUNet.from_checkpoint(args.init).float().train() if args.init else BlendUNet(tuple(args.widths)))
    net = net.to(device)
    model = DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    schedule = cosine_schedule(optimizer, args.steps)
    checkpoint = Checkpoint(args.checkpoint, model=net, optimizer=optimizer, schedule=schedule)
    if args.resume:
        checkpoint.resume(device)

    def one_step(batch, done: int) -> dict[str, float]:
        loss, band_l1 = train_step(model, batch, device, args.band_weight, args.alpha_weight)
        optimiser_step(loss, optimizer)
        schedule.step()
        return {"band_l1": band_l1}

    run_epochs(args, checkpoint, loader, dataset, sampler, rank, one_step, lambda f: {"band_l1": f"{f['band_l1']:.4f}"},
               before_epoch=lambda done: net.train())
    record = {
        "widths": list(net.widths), "init": args.init.name if args.init else None, "crop": args.crop,
        "work_long_side": WORK_LONG_SIDE, "steps": args.steps,
        "batch_size": args.batch_size, "processes": world, "lr": args.lr, "schedule": "Adam, cosine decay to 0",
        "band_weight": args.band_weight, "alpha_weight": args.alpha_weight, "band_radius": BAND_RADIUS,
        "data": args.data, "train_images": len(items), "people": len(found),
        "foreground_folders": [str(p) for p in args.foregrounds],
        "footage": {"sequences": args.footage_sequences.split(","), "every": args.footage_every,
                    "shots": len(shots), "share": args.footage_share} if shots else None,
        "train_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see --data",
        "seconds": round(checkpoint.elapsed, 1), "machine": machine(device), "history": checkpoint.history,
    }
    if rank == 0:
        save_weights(net, args.out, record)
    finish_distributed(world)
    return record


def main(argv: list[str] | None = None) -> None:
    print_record(train(parse_args(argv)))


if __name__ == "__main__":
    command.run(main)
