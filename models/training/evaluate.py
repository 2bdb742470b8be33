"""Held-out evaluation: MSE, fMSE and PSNR as in Harmonizer's Table 1.

    python -m models.training.evaluate --weights weights/harmonizer-lite0.safetensors --data registry

Every sample is scored at 256×256 on 0–255 values (float, not rounded) against
the real image: MSE over the whole image, fMSE over the foreground only (mask
> 0.5, like the official binarised masks), PSNR with a peak of 255 (the usual
iHarmony4 convention; the official script's data-range quirk is not copied), each
averaged over samples. Rows: every ``--weights`` model, the unharmonized
composite and Reinhard colour transfer in Lab towards the visible background.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.harmonizers.harmonizer.filters import apply_filters
from models.harmonizers.harmonizer.network import HarmonizerNet
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet
from models.ops.checkpoint import load_state_dict_file
from models.ops.colour_transfer import reinhard_lab
from models.ops.files import atomic_path
from models.training.data import HarmonizationDataset, PersonMasker, collect, source_name
from models.training.synthesis import synthesize

METRIC_SIZE = 256
VARIANTS_PER_IMAGE = 16
METRICS = ("mse", "fmse", "psnr")


def image_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """(MSE, fMSE, PSNR) of H×W×3 images on a 0–255 scale; ``mask`` H×W in [0,1]."""
    diff2 = (pred.astype(np.float64) - target.astype(np.float64)) ** 2
    mse = float(diff2.mean())
    fg = mask > 0.5
    fmse = float(diff2[fg].mean()) if fg.any() else 0.0
    psnr = 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))
    return mse, fmse, psnr


def load_harmonizer(path: str | Path) -> nn.Module:
    """Our Harmonizer-Lite weights or the official ``harmonizer.pth`` (told apart by the keys)."""
    state = load_state_dict_file(path, "Harmonizer checkpoint")
    official = any("_se_reduce" in k for k in state)  # B0 has squeeze-excite, Lite0 has none
    return (HarmonizerNet if official else HarmonizerLiteNet).from_checkpoint(path)


def harmonize(net: nn.Module, composite: torch.Tensor, mask: torch.Tensor,
              background: torch.Tensor) -> torch.Tensor:
    """Predict arguments (at 256², as the app does) and apply the filter chain."""
    if isinstance(net, HarmonizerLiteNet):
        args = net.predict_arguments(composite, mask, background)
    else:
        args = net.predict_arguments(composite, mask)
    return apply_filters(composite, args, mask)


def _hwc255(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy().astype(np.float64) * 255


@torch.no_grad()
def evaluate(samples: Iterable[Mapping[str, torch.Tensor]], nets: Mapping[str, nn.Module]
             ) -> dict[str, dict[str, float]]:
    """Mean metrics per method over ``samples`` (``HarmonizationDataset`` items at 256²)."""
    totals: dict[str, np.ndarray] = {}
    count = 0
    for s in samples:
        real, mask, background = s["real"][None], s["mask"][None], s["background"][None]
        composite = s["composite"][None] if "composite" in s else synthesize(real, mask, s["args"][None])[0]
        comp_np, mask_np = composite[0].permute(1, 2, 0).numpy(), mask[0, 0].numpy()
        outputs = {"composite": _hwc255(composite),
                   "reinhard": reinhard_lab(comp_np, mask_np, 1 - mask_np).astype(np.float64) * 255}
        for name, net in nets.items():
            outputs[name] = _hwc255(harmonize(net, composite, mask, background))
        target = _hwc255(real)
        for name, out in outputs.items():
            totals[name] = totals.get(name, 0) + np.array(image_metrics(out, target, mask_np))
        count += 1
    order = [*nets, "composite", "reinhard"]
    return {name: {**dict(zip(METRICS, (totals[name] / count).round(3).tolist())), "count": count}
            for name in order}


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    width = max(len(n) for n in results) + 2
    lines = [f"{'method':<{width}}{'MSE':>10}{'fMSE':>10}{'PSNR':>9}"]
    for name, r in results.items():
        lines.append(f"{name:<{width}}{r['mse']:>10.2f}{r['fmse']:>10.2f}{r['psnr']:>9.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate",
                                description="Score harmonizer weights on the held-out split.")
    p.add_argument("--weights", type=Path, action="append", default=[],
                   help="Harmonizer-Lite .safetensors or official harmonizer.pth (repeatable)")
    p.add_argument("--data", action="append", required=True,
                   help="'registry', an image folder or an iHarmony4 root (repeatable)")
    p.add_argument("--variants", type=int, default=VARIANTS_PER_IMAGE,
                   help="synthetic samples per held-out photo (iHarmony4 composites are used as they are)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out synthesis")
    p.add_argument("--no-person-masks", action="store_true", help="random shapes only (no MediaPipe)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    nets = {w.stem: load_harmonizer(w) for w in args.weights}
    items = collect(args.data, "test")
    dataset = HarmonizationDataset(items, METRIC_SIZE, train=False, variants=args.variants, seed=args.seed,
                                   with_background=True,
                                   person_masks=None if args.no_person_masks else PersonMasker())
    results = evaluate(dataset, nets)
    print(f"held-out: {len(items)} images, {len(dataset)} samples at {METRIC_SIZE}x{METRIC_SIZE}")
    print(format_table(results))
    report = {"data": args.data, "held_out_images": len(items), "held_out_samples": len(dataset),
              "variants_per_image": args.variants, "seed": args.seed, "size": METRIC_SIZE,
              "test_groups": sorted({it.group for it in items}),
              "test_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see data",
              "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
