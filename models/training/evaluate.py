"""One evaluation for every harmonizer, on the fixed held-out split.

    python -m models.training.evaluate --data corpus [--harmonizers all] [--weights W.safetensors] --json eval.json

Every row runs through :func:`~models.harmonizers.still.harmonize_still`, the code
``harmonicam harmonize`` and the video pipeline run, on uint8 images at 256×256:

* **inharmonious composites** (the Harmonizer paper's synthesis: the person region of a
  real photo pushed out of harmony by random reverse-order filters): MSE over the image,
  fMSE over the foreground (mask > 0.5), PSNR with a peak of 255, against the real photo;
* **identity fMSE**: the real photo itself as the composite — a harmonizer must leave a
  harmonious composite alone, so lower is better and 0 is perfect;
* **temporal jitter**: a static scene with sensor noise played as a 2-second clip; the
  mean frame-to-frame change of the person's mean colour, in grey levels (the input's own
  is the ``composite`` row).

Rows: every requested registered harmonizer (``none`` is the unharmonized composite),
every ``--weights`` file (through the ``harmonizer`` entry), and a plain Reinhard Lab
transfer towards the visible background (``reinhard-lab``, the classic baseline).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.base import Harmonizer
from models.harmonizers.still import harmonize_still
from models.ops.colour_transfer import reinhard_lab
from models.ops.arguments import output_file, ranged
from models.ops.files import write_json
from models.stream import StreamState
from models.training import command
from models.training.data import HarmonizationDataset, PersonMasker, collect, source_name
from models.training.synthesis import synthesize

METRIC_SIZE = 256
VARIANTS_PER_IMAGE = 16
METRICS = ("mse", "fmse", "psnr", "identity_fmse", "jitter")
CLIP_FRAMES, CLIP_FPS, CLIP_NOISE = 60, 30.0, 3.0

#: A method: (composite uint8, mask float32, complete background uint8) -> harmonized uint8.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def image_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """(MSE, fMSE, PSNR) of H×W×3 images on a 0–255 scale; ``mask`` H×W in [0,1]."""
    diff2 = (pred.astype(np.float64) - target.astype(np.float64)) ** 2
    mse = float(diff2.mean())
    fg = mask > 0.5
    fmse = float(diff2[fg].mean()) if fg.any() else 0.0
    psnr = 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))
    return mse, fmse, psnr


def reinhard_baseline(composite: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Reinhard Lab transfer of the foreground towards the visible background of the composite."""
    return reinhard_lab(composite, mask, 1 - mask)


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def jitter(harmonizer: Harmonizer | None, real: np.ndarray, mask: np.ndarray, background: np.ndarray,
           seed: int = 0) -> float:
    """Mean frame-to-frame change (levels, RGB L2) of the person's mean colour over a noisy static clip.

    ``harmonizer`` None measures the input clip itself. File-mode stream (deterministic).
    """
    rng = np.random.default_rng(seed)
    state = StreamState(live=False)
    fg = mask > 0.5
    means = []
    try:
        for i in range(CLIP_FRAMES):
            noisy = np.clip(real + rng.normal(0, CLIP_NOISE, real.shape), 0, 255).astype(np.uint8)
            out = noisy if harmonizer is None else harmonizer.harmonize(
                Composite(noisy, mask, noisy), background, Frame(noisy, i, i / CLIP_FPS), state)
            means.append(out[fg].astype(np.float64).mean(0))
    finally:
        state.close()
    settled = np.array(means[int(CLIP_FPS):])  # after the first second: the smoothing has settled
    return float(np.linalg.norm(np.diff(settled, axis=0), axis=1).mean())


def evaluate(samples: Iterable[Mapping[str, torch.Tensor]], methods: Mapping[str, Method],
             streams: Mapping[str, Harmonizer | None] | None = None) -> dict[str, dict[str, float]]:
    """Mean metrics per method over ``samples`` (``HarmonizationDataset`` items at 256²).

    ``streams`` maps a row to the harmonizer whose temporal jitter is measured (None: the input).
    """
    totals = {name: np.zeros(4) for name in methods}
    count = 0
    first = None
    for s in samples:
        real_t, mask_t = s["real"][None], s["mask"][None]
        composite_t = s["composite"][None] if "composite" in s else synthesize(real_t, mask_t, s["args"][None])[0]
        real, composite = _uint8(real_t[0]), _uint8(composite_t[0])
        mask, background = mask_t[0, 0].numpy().astype(np.float32), _uint8(s["background"])
        first = first or (real, mask, background)
        for name, method in methods.items():
            scores = image_metrics(method(composite, mask, background), real, mask)
            identity = image_metrics(method(real, mask, background), real, mask)[1]
            totals[name] += (*scores, identity)
        count += 1
    results = {}
    for name in methods:
        row = dict(zip(METRICS[:4], (totals[name] / max(count, 1)).round(3).tolist()))
        if streams is not None and name in streams and first is not None:
            row["jitter"] = round(jitter(streams[name], *first), 3)
        results[name] = {**row, "count": count}
    return results


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    width = max(len(n) for n in results) + 2
    lines = [f"{'method':<{width}}{'MSE':>9}{'fMSE':>9}{'PSNR':>8}{'identity fMSE':>15}{'jitter':>8}"]
    for name, r in results.items():
        jit = f"{r['jitter']:>8.2f}" if "jitter" in r else f"{'-':>8}"
        lines.append(f"{name:<{width}}{r['mse']:>9.1f}{r['fmse']:>9.1f}{r['psnr']:>8.2f}"
                     f"{r['identity_fmse']:>15.1f}{jit}")
    return "\n".join(lines)


def harmonizer_rows(names: list[str], weights: list[Path], keep_bright: bool = True) -> dict[str, Harmonizer]:
    """The registered harmonizers by name, plus one ``harmonizer`` per weights file (named by its stem), each with
    ``keep_bright`` set (:mod:`models.harmonizers.keep_bright`)."""
    rows = {name: registry.create("harmonizer", name) for name in names}
    rows.update({w.stem: registry.create("harmonizer", "harmonizer", weights=w) for w in weights})
    for harmonizer in rows.values():
        harmonizer.keep_bright = keep_bright
    return rows


def methods_for(rows: Mapping[str, Harmonizer]) -> dict[str, Method]:
    methods: dict[str, Method] = {name: (lambda c, m, b, h=h: harmonize_still(h, c, m, b)) for name, h in rows.items()}
    methods["reinhard-lab"] = reinhard_baseline
    return methods


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate",
                                description="Score harmonizers on the fixed held-out split.")
    p.add_argument("--harmonizers", default="all",
                   help="comma-separated registered harmonizers, or 'all' (every usable one; default)")
    p.add_argument("--weights", type=Path, action="append", default=[],
                   help="more Harmonizer checkpoints to score (ours .safetensors or the official .pth)")
    p.add_argument("--data", action="append", required=True,
                   help="'corpus', 'registry', an image folder or an iHarmony4 root (repeatable)")
    p.add_argument("--split", default="test", choices=("test", "val"), help="held-out split (default test)")
    p.add_argument("--variants", type=ranged(1, 1000, whole=True), default=VARIANTS_PER_IMAGE,
                   help="synthetic samples per held-out photo (iHarmony4 composites are used as they are)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out synthesis")
    p.add_argument("--no-person-masks", action="store_true", help="random shapes only (no MediaPipe)")
    p.add_argument("--keep-bright", action=argparse.BooleanOptionalAction, default=True,
                   help="score the harmonizers with the keep-bright limit on (default) or off")
    p.add_argument("--json", type=output_file("harmonizers.json", (".json",)), help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    names = (registry.usable("harmonizer") if args.harmonizers == "all"
             else [n for n in args.harmonizers.split(",") if n])
    rows = harmonizer_rows(names, args.weights, args.keep_bright)
    items = collect(args.data, args.split)
    dataset = HarmonizationDataset(items, METRIC_SIZE, train=False, variants=args.variants, seed=args.seed,
                                   with_background=True,
                                   person_masks=None if args.no_person_masks else PersonMasker())
    results = evaluate(dataset, methods_for(rows), streams=rows)  # reinhard-lab is per image: no stream
    for h in rows.values():
        h.close()
    print(f"held-out ({args.split}): {len(items)} images, {len(dataset)} samples at {METRIC_SIZE}x{METRIC_SIZE}")
    print(format_table(results))
    report = {"data": args.data, "split": args.split, "keep_bright": args.keep_bright, "held_out_images": len(items),
              "held_out_samples": len(dataset), "variants_per_image": args.variants, "seed": args.seed,
              "size": METRIC_SIZE, "test_groups": sorted({it.group for it in items}),
              "test_files": [source_name(it.real) for it in items] if len(items) <= 200 else "see data",
              "results": results}
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    command.run(main)
