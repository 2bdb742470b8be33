"""Score the blends on fixed held-out triplets inside the boundary band (Xing et al., Table 1 protocol).

    python -m models.training.evaluate_blend --data corpus [--blends linear,defringe,learned] \\
        [--blend-weights W.safetensors] [--samples 60] [--json eval.json]

Triplets (``blend_data``) are built from the held-out split only: its people (matted
once, cached) and cut-outs over its photos, at the working size (long side 512). Each
blend runs through its registered stage exactly as in the pipeline, on the matte the
pipeline would hand it (MediaPipe's real answer on the source, or a degraded true
matte, both through the pipeline's matte post-processing). Per sample:

* **band PSNR / SSIM**: inside the boundary band of the true matte (the unknown region
  of a trimap made by erosion and dilation, 1.2 % of the long side each way), against
  the target composite; PSNR with a peak of 255, SSIM with a 7×7 window averaged over
  the band's pixels;
* **PSNR**: over the whole image;
* **band α error**: mean |α − α_true| in the band, for the alpha the blend actually used.

The table gives the means over samples.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from models import registry
from models.frame import Frame
from models.matting.base import Matte
from models.ops.arguments import output_file, ranged
from models.ops.files import write_json
from models.stream import StreamState
from models.training import command
from models.training.blend_data import BlendTriplets, PipelineMatte, WORK_LONG_SIDE, people
from models.training.boundary import boundary_band
from models.training.data import PersonMasker, collect, load_rgb, source_name

METRICS = ("band_psnr", "band_ssim", "psnr", "band_alpha_error")


def _psnr(mse: float) -> float:
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))


def band_metrics(output: np.ndarray, target: np.ndarray, alpha: np.ndarray, true_alpha: np.ndarray,
                 band: np.ndarray) -> dict[str, float]:
    """The four metrics of one sample (uint8 H×W×3 images, float H×W mattes, bool band)."""
    from skimage.metrics import structural_similarity

    diff2 = (output.astype(np.float64) - target.astype(np.float64)) ** 2
    _, ssim = structural_similarity(output, target, channel_axis=2, data_range=255, win_size=7, full=True)
    return {"band_psnr": _psnr(float(diff2[band].mean())), "band_ssim": float(ssim[band].mean()),
            "psnr": _psnr(float(diff2.mean())),
            "band_alpha_error": float(np.abs(alpha - true_alpha)[band].mean())}


def _uint8(t) -> np.ndarray:
    return np.clip(t.numpy().transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)


def blend_scores(frame: Frame, background: np.ndarray, target: np.ndarray, matte: Matte, true_alpha: np.ndarray,
                 blends: dict[str, object]) -> dict[str, dict[str, float]] | None:
    """Each blend's :func:`band_metrics` for ``frame`` composited over ``background`` with ``matte`` (as the
    pipeline hands it) against ``target``; None when ``true_alpha`` has no boundary band."""
    band = boundary_band(true_alpha)
    if not band.any():
        return None
    scores = {}
    for name, blend in blends.items():
        state = StreamState(live=False)
        out = blend.blend(frame, matte, background, state)
        state.close()
        scores[name] = band_metrics(out.image, target, np.asarray(out.alpha), true_alpha, band)
    return scores


def sample_scores(sample: dict, blends: dict[str, object]) -> dict[str, dict[str, float]] | None:
    """:func:`blend_scores` of one triplet, given the matte as the pipeline gives it (the post-processing's
    exclusions included)."""
    source, background, target = (_uint8(sample[k]) for k in ("source", "background", "target"))
    excluded = sample["excluded"][0].numpy() > 0.5
    matte = Matte(sample["alpha"][0].numpy(), excluded=excluded if excluded.any() else None)
    return blend_scores(Frame(source, 0, 0.0), background, target, matte, sample["true_alpha"][0].numpy(), blends)


def mean_scores(samples: Iterable[dict[str, dict[str, float]]], names: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per blend of ``names``: each metric's mean over ``samples`` (:func:`blend_scores` results), and their count."""
    totals = {name: np.zeros(len(METRICS)) for name in names}
    count = 0
    for scores in samples:
        count += 1
        for name, m in scores.items():
            totals[name] += [m[k] for k in METRICS]
    return {name: {**dict(zip(METRICS, (t / max(count, 1)).round(4).tolist())), "count": count}
            for name, t in totals.items()}


def evaluate(dataset: BlendTriplets, blends: dict[str, object]) -> dict[str, dict[str, float]]:
    # Training datasets draw forever; the held-out set has a length.
    scores = (sample_scores(dataset[index], blends) for index in range(len(dataset)))
    return mean_scores((s for s in scores if s is not None), blends)


def format_table(results: dict[str, dict[str, float]]) -> str:
    width = max(len(n) for n in results) + 2
    lines = [f"{'blend':<{width}}{'band PSNR':>11}{'band SSIM':>11}{'PSNR':>8}{'band α err':>12}"]
    for name, r in results.items():
        lines.append(f"{name:<{width}}{r['band_psnr']:>11.2f}{r['band_ssim']:>11.4f}{r['psnr']:>8.2f}"
                     f"{r['band_alpha_error']:>12.4f}")
    return "\n".join(lines)


def held_out(data: list[str], split: str, samples: int, seed: int) -> tuple[BlendTriplets, list]:
    """The fixed held-out triplets of ``split`` and the items they come from."""
    items = collect(data, split)
    matte = PipelineMatte()
    dataset = BlendTriplets(people(items, PersonMasker()), [load_rgb(it.real, WORK_LONG_SIDE) for it in items],
                            train=False, length=samples, seed=seed, cutout_share=0.5, matting=matte.raw,
                            refine=matte.refine)
    return dataset, items


def add_blend_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every blend evaluation has: which blends, the learned blend's weights, a JSON report."""
    parser.add_argument("--blends", default="all",
                        help="comma-separated registered blends, or 'all' (every usable one)")
    parser.add_argument("--blend-weights", type=Path, help="weights for the learned blend")
    parser.add_argument("--json", type=output_file("blends.json", (".json",)), help="also write the results here")


def make_blends(spec: str, weights: Path | None) -> dict[str, object]:
    """The blends named by ``spec`` (comma-separated, or 'all': every usable registered one), the learned
    one with ``weights`` when given."""
    names = registry.usable("blend") if spec == "all" else [n for n in spec.split(",") if n]
    return {name: registry.create("blend", name, **({"weights": weights} if weights and name == "learned" else {}))
            for name in names}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate_blend",
                                description="Score blends inside the boundary band on held-out triplets.")
    p.add_argument("--data", action="append", required=True, help="'corpus' or an image folder (repeatable)")
    p.add_argument("--split", default="test", choices=("test", "val"))
    add_blend_arguments(p)
    p.add_argument("--samples", type=ranged(1, 100_000, whole=True), default=60, help="held-out triplets to score")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--record", action="store_true", help="enter --blend-weights in weights/MANIFEST.json as the "
                   "default learned blend, with these figures")
    p.add_argument("--notes", help="with --record: how the weights were made, what else was tried")
    return p.parse_args(argv)


def record(weights: Path, report: dict, notes: str | None = None) -> None:
    """The manifest entry of blending weights: the shared entry with this network's architecture."""
    from models.blending.blend_net import BlendUNet
    from models.blending.learned import ARCHITECTURE, WORK_LONG_SIDE as STAGE_SIDE
    from models.training.manifest import record_in_manifest

    widths = BlendUNet.from_checkpoint(weights).widths
    architecture = {
        "class": ARCHITECTURE, "options": {"widths": list(widths)}, "input_size": f"long side {STAGE_SIDE}, "
        "the box around the outline", "normalisation": "RGB and alpha in [0, 1], centred (x - 0.5)",
        "inputs": "source frame (old background), imperfect alpha, complete new background",
        "outputs": "corrections (Δα, ΔF) of linear blending; zero = linear blending"}
    record_in_manifest(weights, report, True, notes, architecture, model_row="learned")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    blends = make_blends(args.blends, args.blend_weights)
    dataset, items = held_out(args.data, args.split, args.samples, args.seed)
    results = evaluate(dataset, blends)
    for blend in blends.values():
        blend.close()
    print(f"held-out ({args.split}): {len(items)} photos, {dataset.people_count} people, "
          f"{len(dataset)} triplets at long side {WORK_LONG_SIDE}")
    print(format_table(results))
    report = {"data": args.data, "split": args.split, "samples": len(dataset), "seed": args.seed,
              "people": dataset.people_count, "test_files": [source_name(it.real) for it in items],
              "results": results}
    if args.json:
        write_json(args.json, report)
    if args.record:
        if args.blend_weights is None or "learned" not in results:
            raise SystemExit("--record needs --blend-weights and the learned blend among --blends")
        record(args.blend_weights, report, args.notes)
    return report


if __name__ == "__main__":
    command.run(main)
