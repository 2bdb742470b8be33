"""Score the blends on held-out real footage: DAVIS 2016 person sequences, in the boundary band.

    python -m models.training.evaluate_blend_footage --footage ../shared/eval/real-footage \\
        [--sequences breakdance,dance-twirl,...] [--every 8] [--backgrounds A.jpg,B.jpg] \\
        [--blends linear,defringe,learned] [--blend-weights W.safetensors] [--json eval.json]

The synthetic triplets of :mod:`models.training.evaluate_blend` are made by us; this is footage we did
not make (folder layout and references: :mod:`models.training.footage`). For each sequence (by
default the evaluation-only ones), every frame goes through the matting model (``--matting``,
MediaPipe by default) and the pipeline's matte post-processing with its default options, in order;
frames 0, n, 2n, … (``--every``) are scored. For each scored frame and each background (the shipped
``assets/backgrounds/*.jpg``, cover-fit as the app does):

* the **target** is α·F + (1−α)·B with the reference soft matte α and colour F refined from the
  frame's annotation (closed-form matting, :func:`footage.reference_layer`);
* each **blend** composites the real frame over B with the matte the pipeline gives it, and is
  scored as in :func:`evaluate_blend.blend_scores`: band PSNR / SSIM (the band of the reference
  matte), whole-frame PSNR, band α error.

The report gives the means per sequence and over all scored composites, and the source revision
and matte options it measured, since both move.
"""
from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models import registry
from models.io import read_image_rgb
from models.matting.base import Matting
from models.matting.postprocess import MatteOptions
from models.ops.arguments import ranged
from models.ops.files import write_json
from models.ops.sizes import cover_fit
from models.training import command
from models.training.blend_data import compose
from models.training.evaluate_blend import add_blend_arguments, blend_scores, format_table, make_blends, mean_scores
from models.training.evaluate_footage import Clip
from models.training.footage import EVALUATION_SEQUENCES, pipeline_mattes, reference_layer, sequence_clips

REPOSITORY = Path(__file__).resolve().parents[2]
SHIPPED_BACKGROUNDS = REPOSITORY / "assets" / "backgrounds"


def sequence_scores(clip: Clip, blends: dict[str, object], photos: Sequence[np.ndarray], matting: Matting,
                    every: int) -> list[dict[str, dict[str, float]]]:
    """:func:`blend_scores` of every scored frame of ``clip`` over each of ``photos``."""
    scores = []
    for frame, matte, mask in pipeline_mattes(clip, matting, every):
        layer = reference_layer(frame.rgb, mask)
        for background in (cover_fit(photo, frame.size) for photo in photos):
            target = compose(layer.rgb, layer.alpha, background)
            result = blend_scores(frame, background, target, matte, layer.alpha, blends)
            if result is not None:
                scores.append(result)
    return scores


def evaluate_footage(clips: Sequence[Clip], blends: dict[str, object], photos: Sequence[np.ndarray],
                     matting: Matting, every: int) -> dict[str, dict]:
    """``{"sequences": {name: means}, "overall": means}``, means as :func:`mean_scores` gives them."""
    per_sequence = {clip.name: sequence_scores(clip, blends, photos, matting, every) for clip in clips}
    return {"sequences": {name: mean_scores(scores, blends) for name, scores in per_sequence.items()},
            "overall": mean_scores((s for scores in per_sequence.values() for s in scores), blends)}


def format_sequences(results: dict[str, dict]) -> str:
    """One row per sequence and one for all: the composites scored, and each blend's band and whole-frame PSNR."""
    rows = {**results["sequences"], "all": results["overall"]}
    blends = list(results["overall"])
    width = max(len(name) for name in rows) + 2
    lines = [f"{'':<{width}}{'':>6}" + "".join(f"{name:>22}" for name in blends),
             f"{'sequence':<{width}}{'n':>6}" + f"{'band PSNR':>12}{'PSNR':>10}" * len(blends)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}{row[blends[0]]['count']:>6}"
                     + "".join(f"{row[b]['band_psnr']:>12.2f}{row[b]['psnr']:>10.2f}" for b in blends))
    return "\n".join(lines)


def source_revision() -> str:
    """The repository's commit (``-dirty`` with uncommitted changes), or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=REPOSITORY,
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate_blend_footage",
                                description="Score blends inside the boundary band on held-out real footage.")
    p.add_argument("--footage", type=Path, required=True,
                   help="the real-footage folder (with davis/) or a folder of DAVIS-like sequences")
    p.add_argument("--sequences", default=",".join(EVALUATION_SEQUENCES),
                   help="comma-separated sequences (default: the evaluation-only ones)")
    p.add_argument("--every", type=ranged(1, 10_000, whole=True), default=8,
                   help="score frames 0, N, 2N, … (all frames are matted)")
    p.add_argument("--backgrounds", help="comma-separated background images (default: the shipped ones)")
    p.add_argument("--matting", default="mediapipe", choices=registry.usable("matting"), metavar="NAME",
                   help="the registered matting model (default mediapipe)")
    add_blend_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    clips = sequence_clips(args.footage, [n for n in args.sequences.split(",") if n])
    paths = ([Path(p) for p in args.backgrounds.split(",") if p] if args.backgrounds
             else sorted(SHIPPED_BACKGROUNDS.glob("*.jpg")))
    photos = [read_image_rgb(path) for path in paths]
    blends = make_blends(args.blends, args.blend_weights)
    matting = registry.create("matting", args.matting)
    try:
        results = evaluate_footage(clips, blends, photos, matting, args.every)
    finally:
        matting.close()
        for blend in blends.values():
            blend.close()
    revision = source_revision()
    print(f"real footage: {len(clips)} sequences, every {args.every}th frame over {len(photos)} backgrounds; "
          f"{args.matting} matting and the matte post-processing of {revision}")
    print(format_sequences(results))
    print(format_table(results["overall"]))
    report = {"footage": str(args.footage), "sequences": [clip.name for clip in clips], "every": args.every,
              "backgrounds": [p.name for p in paths], "matting": args.matting, "matte_options": asdict(MatteOptions()),
              "revision": revision, "results": results["overall"], "per_sequence": results["sequences"]}
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    command.run(main)
