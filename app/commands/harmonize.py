"""``harmonicam harmonize``: harmonize still composites (a file or a folder) with any registered harmonizer.

    harmonicam harmonize --harmonizer NAME --composite C --mask M [--background B] --out O

Each of C, M, B, O is a file or a folder. With folders, every image in C is
paired with the file of the same stem in M (and B) and the result is written as
``O/<stem>.png``. Every pair is checked before anything is written, and each
output is written atomically. It runs the video pipeline's harmonizer code on a
one-frame stream (:func:`models.harmonizers.still.harmonize_still`).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.assemble import StageChoice, make_harmonizer, resolve_device, resolve_runtime
from app.errors import RuntimeFailure, UsageError
from app.imaging import IMAGE_EXTENSIONS, read_rgb
from app.sinks.paths import make_folder, write_failure
from models.harmonizers.still import harmonize_still
from models.ops.files import atomic_path

log = logging.getLogger("harmonicam")


@dataclass(frozen=True)
class Job:
    composite: Path
    mask: Path
    background: Path | None
    out: Path


def _images(folder: Path) -> dict[str, Path]:
    """Images in ``folder`` (not recursive) by stem."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def plan(composite: Path, mask: Path, background: Path | None, out: Path) -> list[Job]:
    """Pair the inputs (files with files, folders by stem) or say in one sentence what does not fit."""
    for what, path in (("--composite", composite), ("--mask", mask), ("--background", background)):
        if path is not None and not path.exists():
            raise UsageError(f"{what} {path} does not exist; check the path")
    if composite.is_file():
        for what, path in (("--mask", mask), ("--background", background)):
            if path is not None and not path.is_file():
                raise UsageError(f"{what} {path} is a folder but --composite is a file; pass a file for both")
        if out.is_dir():
            out = out / f"{composite.stem}.png"
        if out.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"--out {out} is not an image name; end it in .png or .jpg, or pass a folder")
        if not out.parent.is_dir():
            raise UsageError(f"--out {out}: folder {out.parent} does not exist; create it first")
        return [Job(composite, mask, background, out)]
    for what, path in (("--mask", mask), ("--background", background)):
        if path is not None and not path.is_dir():
            raise UsageError(f"{what} {path} is a file but --composite is a folder; pass a folder for both")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file but --composite is a folder; pass a folder for the results")
    composites = _images(composite)
    if not composites:
        raise UsageError(f"--composite {composite} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    masks = _images(mask)
    backgrounds = _images(background) if background is not None else {}
    for what, found, folder in (("mask", masks, mask), ("background", backgrounds, background)):
        if folder is None:
            continue
        missing = [stem for stem in composites if stem not in found]
        if missing:
            raise UsageError(f"{len(missing)} composite(s) have no {what} of the same name in {folder} "
                             f"(e.g. {composites[missing[0]].name}); add them or remove those composites")
    return [Job(path, masks[stem], backgrounds.get(stem), out / f"{stem}.png") for stem, path in composites.items()]


def read_mask(path: Path) -> np.ndarray:
    """An 8-bit (or 16-bit) grayscale image as float32 in [0,1]; colour masks are converted to grey."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise RuntimeFailure(f"mask {path} is not a readable image; use an 8-bit grayscale PNG (255 = person)")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return (image.astype(np.float32) / scale).clip(0, 1)


def write_image(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeFailure(f"could not encode {path.name}; use a .png or .jpg name")
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data.tobytes())
    except OSError as exc:
        raise write_failure(path, exc) from None


def _progress(done: int, total: int, name: str) -> None:
    if total > 1:
        end = "\r" if sys.stderr.isatty() and done < total else "\n"
        if end == "\r" or done == total or done % max(1, total // 10) == 0:
            print(f"harmonize: {done}/{total} {name}", end=end, file=sys.stderr, flush=True)


def harmonize_command(args) -> int:
    jobs = plan(Path(args.composite), Path(args.mask), args.background and Path(args.background), Path(args.out))
    device = resolve_device(args.device)
    choice = StageChoice(harmonizer=args.harmonizer, harmonizer_weights=args.harmonizer_weights,
                         strength=args.strength, keep_bright=args.keep_bright, device=device,
                         runtime=resolve_runtime(args.runtime, device))
    harmonizer = make_harmonizer(choice)
    try:
        if len(jobs) > 1:
            make_folder(jobs[0].out.parent, "--out")
        for i, job in enumerate(jobs, 1):
            composite, mask = read_rgb(job.composite), read_mask(job.mask)
            background = read_rgb(job.background) if job.background else None
            try:
                result = harmonize_still(harmonizer, composite, mask, background)
            except ValueError as exc:  # sizes that do not match
                raise RuntimeFailure(f"{job.composite.name}: {exc}; give all inputs of a pair the same size") from None
            write_image(job.out, result)
            _progress(i, len(jobs), job.out.name)
    finally:
        harmonizer.close()
    log.info("harmonized %d image(s) with %s into %s", len(jobs), args.harmonizer,
             jobs[0].out if len(jobs) == 1 else jobs[0].out.parent)
    return 0
