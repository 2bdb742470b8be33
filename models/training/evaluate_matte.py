"""Does the matte hold together? Before/after figures for the matte post-processing on real portraits.

    python -m models.training.evaluate_matte [--json PATH] [--corpus DIR] [--limit N]

*Before* is the raw MediaPipe matte through the old post-processing (time EMA and the
grey-guided fast guided filter); *after* is the default :class:`MattePostprocess`
(region decision of :mod:`models.matting.solidify`, colour-guided filter). Rows:

* **see-through interior**: the share of the person's interior with α < 0.9. The interior
  is a reference that the scored matte does not define: the union of the ``mediapipe``
  and ``mediapipe-landscape`` masks (α > 0.5), eroded by 4 % of the image's long side so
  that edge placement does not count, with holes *not* filled. The landscape model is a
  second opinion that keeps the cap whole where the general model goes see-through;
  the erosion leaves only pixels both far from any boundary and seen as person by at
  least one model. Measured on sample-clip frames at several timestamps, scikit-image's
  astronaut, and the corpus photos in which both models see a person (≥ 5 % of the frame).
* **stuck-on background** (sample clip, frame 0): the share of each hand-marked background
  box (flag pole, flag stripes; ``sample_matte_regions.json``) with α > 0.1, and the share
  of the marked cap box with α ≥ 0.9.
* **time**: median post-processing time per 1280×720 frame, one thread.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from models import registry
from models.frame import Frame
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.files import write_json
from models.paths import cache_dir

REGIONS = Path(__file__).with_name("sample_matte_regions.json")
SAMPLE_CLIP = "sample-v1-1280x720.mp4"
TIMESTAMPS = (0.0, 1.25, 2.5, 3.75)
#: Erosion of the reference interior, as a share of the long side (~50 px in 720p): wider than
#: both models' edge ramps, so only the person's inside is scored.
INTERIOR_MARGIN = 0.04
MIN_PERSON = 0.05
OPTIONS = {"before": MatteOptions(solidify=False, colour_guide=False), "after": MatteOptions()}


def sample_frames(path: Path, timestamps=TIMESTAMPS) -> list[tuple[str, np.ndarray]]:
    """(name, RGB) of the sample clip at ``timestamps`` seconds; empty when the clip is not cached."""
    if not path.is_file():
        return []
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    for t in timestamps:
        capture.set(cv2.CAP_PROP_POS_FRAMES, round(t * fps))
        ok, bgr = capture.read()
        if ok:
            frames.append((f"sample@{t:g}s", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    capture.release()
    return frames


def corpus_photos(root: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    """(name, RGB) of the corpus' demo-album photos (people), at most ``limit``; empty without a corpus."""
    from models.training.corpus import SPLITS, corpus_images

    try:
        paths = [p for split in SPLITS for p, _ in corpus_images(root, split) if "kphotoalbum" in p.parts]
    except FileNotFoundError:
        return []
    photos = []
    for p in sorted(paths)[:limit]:
        bgr = cv2.imread(str(p))
        if bgr is not None:
            photos.append((f"corpus:{p.stem}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return photos


def interior(general: np.ndarray, landscape: np.ndarray) -> np.ndarray:
    """The reference interior (bool): the union of both models' masks, eroded by ``INTERIOR_MARGIN``."""
    union = ((general > 0.5) | (landscape > 0.5)).astype(np.uint8)
    r = max(1, round(INTERIOR_MARGIN * max(union.shape)))
    return cv2.erode(union, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)


def postprocess(options: MatteOptions, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return MattePostprocess(options)(Frame(rgb, 0, 0.0), Matte(alpha)).alpha


def box_share(alpha: np.ndarray, box, above: float) -> float:
    x0, y0, x1, y1 = box
    return float((alpha[y0:y1, x0:x1] >= above).mean())


def median_ms(options: MatteOptions, rgb: np.ndarray, alpha: np.ndarray, repeats: int = 30) -> float:
    post = MattePostprocess(options)
    times = []
    for i in range(repeats):
        frame = Frame(rgb, i, i / 30)
        start = time.perf_counter()
        post(frame, Matte(alpha))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def evaluate(images: list[tuple[str, np.ndarray]], sample0: np.ndarray | None) -> dict:
    general, landscape = registry.create("matting", "mediapipe"), registry.create("matting", "mediapipe-landscape")
    try:
        rows = []
        for name, rgb in images:
            raw = general.matte(Frame(rgb, 0, 0.0)).alpha
            inside = interior(raw, landscape.matte(Frame(rgb, 0, 0.0)).alpha)
            if inside.mean() < MIN_PERSON * 0.25 and not name.startswith(("sample", "astronaut")):
                continue  # no person both models agree on
            row = {"image": name}
            for label, options in OPTIONS.items():
                row[label] = float((postprocess(options, rgb, raw)[inside] < 0.9).mean())
            rows.append(row)
        report: dict = {"interior_below_0.9": rows}
        if sample0 is not None:
            regions = json.loads(REGIONS.read_text())
            raw = general.matte(Frame(sample0, 0, 0.0)).alpha
            boxes = {}
            for label, options in OPTIONS.items():
                alpha = postprocess(options, sample0, raw)
                boxes[label] = {**{f"{k} α≥0.9": box_share(alpha, b, 0.9) for k, b in regions["person"].items()},
                                **{f"{k} α>0.1": box_share(alpha, b, 0.1 + 1e-6)
                                   for k, b in regions["background"].items()}}
            report["sample_regions"] = boxes
            cv2.setNumThreads(1)
            report["ms_per_720p_frame"] = {label: median_ms(o, sample0, raw) for label, o in OPTIONS.items()}
        return report
    finally:
        general.close()
        landscape.close()


def table(report: dict) -> str:
    lines = ["| image | before: interior α<0.9 | after |", "|---|---|---|"]
    for r in report["interior_below_0.9"]:
        lines.append(f"| {r['image']} | {r['before']:.3f} | {r['after']:.3f} |")
    if "sample_regions" in report:
        lines += ["", "| sample frame 0 | before | after |", "|---|---|---|"]
        for key in report["sample_regions"]["before"]:
            lines.append(f"| {key} | {report['sample_regions']['before'][key]:.3f} "
                         f"| {report['sample_regions']['after'][key]:.3f} |")
        ms = report["ms_per_720p_frame"]
        lines.append(f"| ms per 720p frame (median, 1 thread) | {ms['before']:.2f} | {ms['after']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate_matte")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--corpus", type=Path, default=cache_dir() / "corpus", help="real-photo corpus (skipped if absent)")
    p.add_argument("--limit", type=int, default=20, help="at most this many corpus photos")
    args = p.parse_args(argv)
    import skimage.data

    frames = sample_frames(cache_dir() / SAMPLE_CLIP)
    if not frames:
        print(f"no sample clip in {cache_dir()}; run `harmonicam` once with the sample source to make it")
    images = frames + [("astronaut", skimage.data.astronaut())] + corpus_photos(args.corpus, args.limit)
    report = evaluate(images, frames[0][1] if frames else None)
    print(table(report))
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
