"""Train PHNet (Efremyan et al., "PHNet: Patch-based Normalization for Portrait Harmonization", 2024).

    OMP_NUM_THREADS=1 python -m models.training.train_phnet --data corpus --config small \\
        --out base.safetensors                             # the network (CPU)
    OMP_NUM_THREADS=1 python -m models.training.train_phnet --data corpus --init base.safetensors \\
        --confidence-only --confidence-samples 2048 --batch-size 32 --steps 3000 --epoch-steps 500 \\
        --identity-fraction 0.5 --out headed.safetensors          # its confidence head (the previous release)
    OMP_NUM_THREADS=1 python -m models.training.train_phnet --data corpus --init headed.safetensors \\
        --steps 200 --epoch-steps 50 --lr 2e-4 --identity-fraction 0.15 --out tuned.safetensors   # a short fine-tune
    OMP_NUM_THREADS=1 python -m models.training.train_phnet --data corpus --init headed.safetensors \\
        --average-with tuned.safetensors --average-weight 0.25 --confidence-only --confidence-samples 2048 \\
        --batch-size 32 --steps 3000 --epoch-steps 500 --identity-fraction 0.5 \\
        --out weights/phnet-small.safetensors     # a quarter of the way, a new head on it: the shipped weights
    torchrun --nproc-per-node 4 -m models.training.train_phnet --data corpus --config ffhqh --out ffhqh.safetensors
    python -m models.training.train_phnet --out weights/phnet-small.safetensors --record eval.json --default

Pairs are synthesised from real photos exactly as for the Harmonizer and AdaIN
(``synthesis.synthesize``: the person region of a real portrait — or a moved
silhouette or a random shape on the other photos — pushed out of harmony; target =
the real photo; a share of harmonious samples whose target is the input itself). The
network sees the binarised mask and its output is composited over the input with the
soft mask (:func:`~models.harmonizers.phnet.stage.harmonize_padded`, as the stage does),
so the loss scores what the app shows. Loss (§4.4, Eq. 15):
``0.2·L_PSNR + 0.01·L_FN-MSE + 0.01·L_G`` with the official code's PSNR form (100/PSNR,
peak 1) and the paper's MSE of gradients; optimiser Lion (§5.1, ``models.training.lion``),
cosine decay; checkpoints every ``--epoch-steps`` and ``--resume``; DDP under torchrun.

``--config small`` is :data:`~models.harmonizers.phnet.network.SMALL`, our narrow
configuration for one CPU thread, with a confidence head that scales the correction per image;
``iharmony4`` and ``ffhqh`` are the official ones. ``--confidence-only`` trains that head alone on
``--init``'s frozen network: the network's predictions for ``--confidence-samples`` training
composites are made once, and since the output at share g is ``composite + g·(prediction −
composite)``, FN-MSE is a quadratic in g whose coefficients are all the head needs per sample
(:func:`share_loss_terms`); ``--identity-fraction`` then weighs "leave it alone" against "correct it".
``--average-with`` puts the network on the straight line between ``--init`` and a fine-tune of it
(:func:`average_states`): the fine-tune corrects more and changes harmonious people more, and a point
part of the way keeps much of the one and little of the other (the shipped share, 0.25, was chosen on
the validation split; weights/MANIFEST.json).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from models.harmonizers.phnet.network import CONFIGS, PHNet
from models.harmonizers.phnet.stage import harmonize_padded
from models.ops.arguments import ranged
from models.ops.checkpoint import load_state_dict_file, load_strict
from models.training import command
from models.training.data import source_name, training_set
from models.training.lion import Lion
from models.training.loop import (IMAGE_SIDE, Checkpoint, add_record_options, add_run_options, cosine_schedule,
                                  distributed_loader, finish_distributed, init_distributed, machine, optimiser_step,
                                  parse_run_args, run_epochs, save_weights, train_or_record)
from models.training.synthesis import synthesize

#: The paper's weights of Eq. 15: (PSNR, FN-MSE, gradient).
LOSS_WEIGHTS = (0.2, 0.01, 0.01)
#: FN-MSE's smallest foreground area in pixels (A_min of Eq. 14, from iDIH).
MIN_AREA = 100.0
#: The PSNR loss stops rewarding below this MSE (50 dB): a nearly perfect harmonious sample
#: would otherwise have an unbounded gradient and outweigh the rest of the batch.
MSE_FLOOR = 1e-5
#: Scale of the logged fMSE: 0–255 levels, as the evaluation reports it.
LEVELS2 = 255.0 ** 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.train_phnet", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append",
                   help="'corpus', 'registry', an image folder or an iHarmony4 root (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="where to write the .safetensors weights (fp16)")
    p.add_argument("--config", default="small", choices=[c.name for c in CONFIGS], help="network configuration")
    p.add_argument("--size", type=IMAGE_SIDE,
                   default=128, help="training input size, a multiple of 8")
    p.add_argument("--lr", type=float, default=3e-4, help="Lion's learning rate (cosine decay to 0)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Lion's decoupled weight decay")
    p.add_argument("--loss-weights", type=float, nargs=3, default=LOSS_WEIGHTS, metavar=("PSNR", "FNMSE", "GRAD"),
                   help="λ0, λ1, λ2 of Eq. 15 (default: the paper's)")
    p.add_argument("--identity-fraction", type=float, default=0.3,
                   help="share of harmonious training composites (the real photo), so the network "
                        "learns to change nothing when nothing is wrong")
    p.add_argument("--confidence-lr", type=float, default=1e-3,
                   help="Lion's learning rate for the confidence head (no weight decay; 1e-3 trained the shipped "
                        "head alone; with the whole network training, 1e-4: faster, the head shuts before it "
                        "has learned to tell harmonious composites from pushed ones)")
    p.add_argument("--confidence-only", action="store_true",
                   help="train only the confidence head of --init's network, which stays as it is: its predictions "
                        "for --confidence-samples training composites are made once, and --steps batches of "
                        "them train the head on its loss in closed form (one process)")
    p.add_argument("--confidence-samples", type=ranged(1, 10**7, whole=True), default=4096,
                   help="with --confidence-only: how many training composites the head learns from")
    p.add_argument("--init", type=Path, help="start from these PHNet weights (fine-tuning); weights without a "
                                              "confidence head get a new one")
    p.add_argument("--average-with", type=Path, metavar="WEIGHTS",
                   help="weight-space average of --init's network with these weights of the same configuration, "
                        "fine-tuned from it (WiSE-FT): the network is (1 − w)·init + w·these; the confidence head "
                        "stays --init's (meant for --confidence-only, which then trains it on the average)")
    p.add_argument("--average-weight", type=float, default=0.5, metavar="W",
                   help="with --average-with: the share w of the fine-tuned weights, in [0, 1] (default 0.5)")
    p.add_argument("--no-person-masks", action="store_true", help="random shapes only (no MediaPipe)")
    add_run_options(p, 6000, "steps between checkpoints (the weights so far are written too)")
    add_record_options(p, "PHNet", "; its 'phnet' row is the model")
    args = parse_run_args(p, argv)
    headed = [c.name for c in CONFIGS if c.confidence]
    if args.confidence_only and not (args.init and args.config in headed):
        p.error(f"--confidence-only needs --init weights and a configuration with a confidence head "
                f"(--config {' or '.join(headed)})")
    if args.average_with and not args.init:
        p.error("--average-with needs --init: the weights it is averaged with")
    if not 0 <= args.average_weight <= 1:
        p.error(f"--average-weight must be in [0, 1], got {args.average_weight}")
    if args.size % 8:
        p.error(f"--size must be a multiple of 8 (PHNet's input), got {args.size}")
    return args


# --- losses (§4.4); every one is per sample, then averaged over the batch ----------------------------------
def psnr_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L_PSNR (Eq. 13) as the official code computes it: 100 / PSNR over the whole image, peak 1.

    The MSE is floored at :data:`MSE_FLOOR` (PSNR at most 50 dB).
    """
    mse = (pred - target).square().mean(dim=(1, 2, 3)).clamp(min=MSE_FLOOR)
    return (100 / (-10 * torch.log10(mse))).mean()


def fn_mse(pred: Tensor, target: Tensor, mask: Tensor, min_area: float = MIN_AREA) -> Tensor:
    """L_FN-MSE (Eq. 14): Σ(pred − target)² / (C · max(A_min, Σ m)), so a small person weighs as much as
    a large one. Divided by the channel count C as in the official code (a per-channel mean)."""
    area = mask.sum(dim=(1, 2, 3)).clamp(min=min_area)
    return ((pred - target).square().sum(dim=(1, 2, 3)) / (pred.shape[1] * area)).mean()


def gradient_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """L_G: the MSE of the horizontal and vertical finite differences of pred·m and target·m (the paper's
    "MSE of gradients"; the official code takes their L1), summed over both directions."""
    error = (pred - target) * mask
    dx = error[..., :, 1:] - error[..., :, :-1]
    dy = error[..., 1:, :] - error[..., :-1, :]
    return dx.square().mean() + dy.square().mean()


def phnet_loss(pred: Tensor, target: Tensor, mask: Tensor,
               weights: tuple[float, float, float] = LOSS_WEIGHTS) -> tuple[Tensor, dict[str, float]]:
    """(λ0·L_PSNR + λ1·L_FN-MSE + λ2·L_G of Eq. 15, each term for the log)."""
    terms = {"psnr": psnr_loss(pred, target), "fnmse": fn_mse(pred, target, mask),
             "grad": gradient_loss(pred, target, mask)}
    total = sum(w * t for w, t in zip(weights, terms.values()))
    return total, {k: float(v.detach()) for k, v in terms.items()}


def foreground_mse(pred: Tensor, target: Tensor, mask: Tensor) -> float:
    """Mean squared error (0–255 levels) over the pixels with mask > 0.5, as the evaluation's fMSE."""
    fg = (mask > 0.5).expand_as(pred)
    return float((pred - target).square()[fg].mean()) * LEVELS2 if fg.any() else 0.0


# --- training ---------------------------------------------------------------------------------------------
def train_step(model: nn.Module, batch: dict[str, Tensor], device: torch.device,
               args: argparse.Namespace) -> tuple[Tensor, dict[str, float]]:
    """(loss, logged figures) of one batch; the caller steps the optimiser."""
    real, mask, synth = (batch[k].to(device) for k in ("real", "mask", "args"))
    composite = synthesize(real, mask, synth)[0]
    harmonized = harmonize_padded(model, composite, mask)
    loss, figures = phnet_loss(harmonized, real, mask, tuple(args.loss_weights))
    with torch.no_grad():
        figures.update(fmse=foreground_mse(harmonized, real, mask), input_fmse=foreground_mse(composite, real, mask))
    return loss, figures


def share_figures(share: Tensor, identity: Tensor) -> dict[str, float]:
    """The confidence head's mean share on the batch's harmonious and pushed composites (a kind the batch lacks
    is left out)."""
    kinds = {"share_identity": share[identity], "share_pushed": share[~identity]}
    return {name: float(values.mean()) for name, values in kinds.items() if values.numel()}


def _float_state(path: Path, what: str) -> dict[str, Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in load_state_dict_file(path, what).items()}


def average_states(init: dict[str, Tensor], tuned: dict[str, Tensor], weight: float) -> dict[str, Tensor]:
    """WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022, Eq. 1):
    θ = (1 − w)·θ_init + w·θ_tuned for every floating-point tensor of the network; the confidence head and
    integer buffers stay ``init``'s. Fine-tuning from ``init`` keeps both in one basin, so the straight line
    between them trades what the fine-tune gained against what it broke, without another training run."""
    missing = sorted(k for k in init if not k.startswith("confidence.") and k not in tuned)
    if missing:
        raise ValueError(f"--average-with weights lack {len(missing)} tensors of --init's network "
                         f"(first: {missing[0]}); give weights of the same configuration, fine-tuned from --init")
    return {k: (1 - weight) * v + weight * tuned[k]
            if v.is_floating_point() and not k.startswith("confidence.") else v
            for k, v in init.items()}


def averaged(args: argparse.Namespace) -> dict:
    """The record's note of ``--average-with`` (nothing without it)."""
    return {"average_with": args.average_with.name, "average_weight": args.average_weight} if args.average_with else {}


def build_network(args: argparse.Namespace) -> PHNet:
    """The configuration's network, official random initialisation, or ``--init``'s weights (averaged with
    ``--average-with``'s when given)."""
    (config,) = [c for c in CONFIGS if c.name == args.config]
    net = PHNet(config)
    if args.init:
        state = _float_state(args.init, "initial weights")
        if args.average_with:
            state = average_states(state, _float_state(args.average_with, "weights to average with"),
                                   args.average_weight)
        if net.confidence is not None and not any(k.startswith("confidence.") for k in state):
            state.update({k: v for k, v in net.state_dict().items() if k.startswith("confidence.")})
        load_strict(net, state, f"PHNet network ({config.name} configuration)", args.init)
    return net


def parameter_groups(net: PHNet, args: argparse.Namespace) -> list[dict]:
    """Lion's groups: the network at ``--lr`` with ``--weight-decay``; its confidence head (when it has one) at
    ``--confidence-lr`` without decay."""
    rest = {"params": [p for n, p in net.named_parameters() if not n.startswith("confidence.")]}
    if net.confidence is None:
        return [rest]
    return [rest, {"params": list(net.confidence.parameters()), "lr": args.confidence_lr, "weight_decay": 0.0}]


def train(args: argparse.Namespace) -> dict:
    """Run training; returns the training record (also stored in the weights' metadata)."""
    rank, world, device = init_distributed()
    torch.manual_seed(args.seed)
    items, dataset = training_set(args, world)
    sampler, loader = distributed_loader(dataset, args, world, rank)

    net = build_network(args).to(device).float()
    model = DistributedDataParallel(net) if world > 1 else net
    optimizer = Lion(parameter_groups(net, args), lr=args.lr, weight_decay=args.weight_decay)
    schedule = cosine_schedule(optimizer, args.steps)
    checkpoint = Checkpoint(args.checkpoint, model=net, optimizer=optimizer, schedule=schedule)
    if args.resume:
        checkpoint.resume(device)

    def record() -> dict:
        return {
            "variant": f"phnet-{net.config.name}", "config": {"enc_sizes": net.config.enc_sizes,
                                                             "grid_count": net.config.grid_count},
            "parameters": sum(p.numel() for p in net.parameters()), "size": args.size, "steps": checkpoint.step,
            "planned_steps": args.steps, "batch_size": args.batch_size, "processes": world, "lr": args.lr,
            "confidence_lr": args.confidence_lr if net.confidence is not None else None,
            "schedule": f"Lion (betas 0.9, 0.99; weight decay {args.weight_decay}), cosine decay to 0",
            "loss": "{} x PSNR loss (100/PSNR) + {} x FN-MSE + {} x gradient MSE, on the output composited "
                    "over the input with the soft mask".format(*args.loss_weights),
            "init": args.init.name if args.init else None, **averaged(args),
            "identity_fraction": args.identity_fraction,
            "data": args.data, "train_images": len(items), "train_groups": len({it.group for it in items}),
            "train_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see --data",
            "person_masks": dataset.people, "seconds": round(checkpoint.elapsed, 1),
            "machine": machine(device), "history": checkpoint.history,
        }

    shares: list[Tensor] = []  # the confidence head's latest output, for the log
    if net.confidence is not None:
        net.confidence.register_forward_hook(lambda module, inputs, out: shares.append(out.detach().flatten()))

    def one_step(batch: dict[str, Tensor], done: int) -> dict[str, float]:
        loss, figures = train_step(model, batch, device, args)
        optimiser_step(loss, optimizer)
        schedule.step()
        if shares:
            figures.update(share_figures(shares.pop(), batch["identity"].to(device) > 0))
            shares.clear()
        return {**figures, "loss": float(loss.detach())}

    # The weights are written with every checkpoint, so a run stopped early still leaves its latest ones.
    run_epochs(args, checkpoint, loader, dataset, sampler, rank, one_step,
               lambda f: {"fmse": f"{f['fmse']:.0f}", "input_fmse": f"{f['input_fmse']:.0f}",
                          **{k: f"{v:.2f}" for k, v in f.items() if k.startswith("share")}},
               before_epoch=lambda done: net.train(), after_save=lambda: save_weights(net, args.out, record()))
    finish_distributed(world)
    return record()


# --- the confidence head alone -------------------------------------------------------------------------------
def share_loss_terms(composite: Tensor, out: Tensor, real: Tensor, mask: Tensor,
                     min_area: float = MIN_AREA) -> Tensor:
    """N×3 coefficients (a, b, c) with FN-MSE(g) = a − 2·b·g + c·g² for the output the stage makes at share g.

    At share g the network's image is ``composite + g·d`` with d = out − composite, composited over the input
    with the soft mask: ``composite + g·m·d``. Its error is g·m·d − e (e = real − composite), a quadratic in g;
    the coefficients carry FN-MSE's normalisation (:func:`fn_mse`).
    """
    e, md = real - composite, mask * (out - composite)
    norm = composite.shape[1] * mask.sum(dim=(1, 2, 3)).clamp(min=min_area)
    return torch.stack([(e * e).sum(dim=(1, 2, 3)), (e * md).sum(dim=(1, 2, 3)), (md * md).sum(dim=(1, 2, 3))],
                       dim=1) / norm[:, None]


@torch.no_grad()
def head_samples(net: PHNet, loader, dataset, device: torch.device, count: int) -> dict[str, Tensor]:
    """What the confidence head learns from, for ``count`` training composites of the frozen ``net``: its
    statistics, the loss coefficients (:func:`share_loss_terms`) and whether the composite was harmonious."""
    parts: dict[str, list[Tensor]] = {"statistics": [], "terms": [], "identity": []}
    epoch, seen = 0, 0
    while seen < count:
        dataset.set_epoch(epoch)
        for batch in loader:
            real, mask, synth = (batch[k].to(device) for k in ("real", "mask", "args"))
            composite = synthesize(real, mask, synth)[0]
            binary = (mask > 0.5).to(composite.dtype)
            out = net.prediction(composite, binary)
            parts["statistics"].append(net.confidence.statistics(composite, out, binary))
            parts["terms"].append(share_loss_terms(composite, out, real, mask))
            parts["identity"].append(batch["identity"].to(device) > 0)
            seen += len(real)
            if seen >= count:
                break
        epoch += 1
    return {k: torch.cat(v)[:count] for k, v in parts.items()}


def train_confidence(args: argparse.Namespace) -> dict:
    """``--confidence-only``: train the head of ``--init``'s network, the rest frozen; returns the record."""
    rank, world, device = init_distributed()
    if world > 1:
        raise SystemExit("--confidence-only runs in one process: start it without torchrun.")
    torch.manual_seed(args.seed)
    items, dataset = training_set(args, world)
    loader = distributed_loader(dataset, args, world, rank)[1]
    net = build_network(args).to(device).float().eval()
    start = time.monotonic()
    samples = head_samples(net, loader, dataset, device, args.confidence_samples)
    head = net.confidence.train()
    optimizer = Lion(head.parameters(), lr=args.confidence_lr)
    schedule = cosine_schedule(optimizer, args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    history, sums = [], {}
    for step in range(1, args.steps + 1):
        pick = torch.randint(len(samples["identity"]), (args.batch_size,), generator=generator).to(device)
        share = head.share(samples["statistics"][pick])[:, 0]
        a, b, c = samples["terms"][pick].unbind(1)
        loss = (a - 2 * b * share + c * share.square()).mean()
        optimiser_step(loss, optimizer)
        schedule.step()
        figures = {"fmse": float(loss.detach()) * LEVELS2, **share_figures(share.detach(), samples["identity"][pick])}
        sums = {k: sums.get(k, []) + [v] for k, v in figures.items()}
        if step % args.epoch_steps == 0 or step == args.steps:
            history.append({"step": step, **{k: round(sum(v) / len(v), 5) for k, v in sums.items()}})
            print(history[-1], flush=True)
            sums = {}
    head.eval()
    terms = samples["terms"]
    record = {
        "variant": f"phnet-{net.config.name}", "config": {"enc_sizes": net.config.enc_sizes,
                                                         "grid_count": net.config.grid_count},
        "parameters": sum(p.numel() for p in net.parameters()), "size": args.size,
        "trained": "the confidence head only; the rest is --init's network, unchanged" if not args.average_with
                   else f"the confidence head only, on the network (1 − {args.average_weight})·--init + "
                        f"{args.average_weight}·--average-with (WiSE-FT)",
        "init": args.init.name, **averaged(args), "samples": len(terms), "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.confidence_lr, "schedule": "Lion (betas 0.9, 0.99), cosine decay to 0",
        "loss": "FN-MSE of the output at the head's share (closed form in the share)",
        "identity_fraction": args.identity_fraction, "data": args.data, "train_images": len(items),
        "train_groups": len({it.group for it in items}),
        "train_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see --data",
        "person_masks": dataset.people, "seconds": round(time.monotonic() - start, 1), "machine": machine(device),
        "input_fnmse": round(float(terms[:, 0].mean()) * LEVELS2, 1),
        "full_share_fnmse": round(float((terms[:, 0] - 2 * terms[:, 1] + terms[:, 2]).mean()) * LEVELS2, 1),
        "history": history,
    }
    save_weights(net, args.out, record)
    return record


def record_weights(weights: Path, evaluation: dict, default: bool, notes: str | None = None) -> dict:
    """Insert ``weights`` into the manifest beside it: the shared entry, with PHNet's architecture."""
    from models.harmonizers.phnet.stage import ARCHITECTURE, INPUT_SIZE, INPUT_SIZES
    from models.training.manifest import record_in_manifest

    config = PHNet.from_checkpoint(weights).config
    size = INPUT_SIZES.get(config.name, INPUT_SIZE)
    return record_in_manifest(weights, evaluation, default, notes, model_row="phnet", architecture={
        "class": ARCHITECTURE,
        "options": {"config": config.name, "enc_sizes": list(config.enc_sizes),
                    "grid_count": list(config.grid_count)},
        "input_size": size,
        "normalisation": f"composite RGB in [0, 1]; mask binarised at 0.5; long side {size}, aspect kept, "
                         "padded to multiples of 8",
        "outputs": "a full RGB image in [0, 1] (sigmoid), composited over the input with the soft mask",
    })


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    train_or_record(args, train_confidence if args.confidence_only else train, record_weights)


if __name__ == "__main__":
    command.run(main)
