"""Real footage decides: the matte and the blends on real video, against the raw model.

    python -m models.training.evaluate_footage --data DIR [--out DIR] [--clips a,b] [--frames N]
                                               [--blends linear,defringe] [--harmonizers none,harmonizer]

Every video under ``DIR`` is a clip (``<name>/video.mp4``, or any ``.mp4``/``.mov``/``.avi``/``.mkv``
file; a user's own recordings work as they are). A ``masks/`` folder beside a clip's video with one
PNG per frame (``00000.png`` = frame 0, 255 = the person) is its ground truth.

MediaPipe's selfie model (the default matting) runs once per frame; every post-processing
*configuration* then gets the same raw answer in stream order, with the clip's timestamps, so
temporal smoothing acts as it does live. Configurations (:func:`configurations`): the raw model,
the raw model with the previous releases' plain temporal EMA (0.05 s), the previous release (that EMA
and the grey guided filter), the region decision of the release before this one (``solidify``: hole
filling, background bars, a hold in time, the colour guided filter), today's default, and today's
default with each of its steps switched off (or an optional one on) in turn.

Measures (:func:`frame_measures`), per clip and overall:

* with masks: IoU of α > 0.5 with the mask; boundary F-measure (DAVIS: boundary pixels matched
  within 0.8 % of the image diagonal); the mean |α − mask| in the boundary band (1.2 % of the long
  side around the mask's outline, :func:`models.training.boundary.boundary_band`), where the soft
  edge a blend composites with is judged; the share of the person's interior (the mask eroded by
  ``MARGIN`` of its size) with α < 0.5, and the share of the background beyond the mask (dilated
  likewise) with α ≥ 0.5; and, once per clip since it is the model's own, the share of the interior
  where the raw model is sure of background (α ≤ 0.1): the floor under *interior lost* for any
  post-processing that keeps confident overrides rare, since turning it into person is one;
* on any clip: the share of each face (MediaPipe face mesh) and of each hand (hand landmarks) with
  α < 0.5 (mean and 95th percentile over faces × frames); confident overrides — raw ≥ 0.9 made
  < 0.5 or raw ≤ 0.1 made ≥ 0.5 — as a share of the frame; flicker, the mean frame-to-frame change
  of α around the person where the frame itself does not change.

With ``--blends``/``--harmonizers``, every pair composites the clips with faces over
``--background`` (the default configuration's matte) and reports, inside each face, the detail
(variance of the Laplacian over the variance of the intensity, so that a change of contrast does
not count as blur) and the mean grey level, each relative to the camera frame.

Writes a Markdown table (stdout and ``report.md``), ``report.json`` and, per clip, a contact sheet of
the default's worst frames (``worst-<clip>.png``) into ``--out``.
"""
from __future__ import annotations

import argparse
import heapq
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from models import registry
from models.frame import Frame
from models.matting import DEFAULT_MATTING
from models.matting.base import Matte
from models.matting.landmarks import PartFinder, Parts
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.arguments import ranged
from models.ops.files import atomic_path, write_json
from models.ops.sizes import cover_fit
from models.ops.tensor_image import enlarge
from models.stream import StreamState
from models.training import command
from models.training.boundary import boundary_band

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
#: Erosion/dilation of a mask for the interior and beyond-the-person shares, as a share of the
#: person's size (the square root of its area).
MARGIN = 0.02
#: DAVIS's boundary tolerance, as a share of the image diagonal.
BOUNDARY_TOLERANCE = 0.008
#: A pixel is still when its grey level (after a 5×5 box blur) moves by less than this between frames.
STILL_LEVELS = 2.0
SURE_PERSON, SURE_BACKGROUND = 0.9, 0.1
WORST = 6
#: The time constant of the previous releases' plain EMA: the "raw model with smoothing" reference.
PREVIOUS_SMOOTHING_S = 0.05
#: Post-processing steps switched off (or, when off by default, on) one at a time (MatteOptions fields).
STEPS = ("smoothing_s", "motion", "smoothing_sides", "islands", "close_unsure", "refine", "guard", "faces", "hands")


# ---------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Clip:
    name: str
    video: Path
    masks: Path | None


def find_clips(root: Path) -> list[Clip]:
    """Every video under ``root``; named by its folder when it is ``<folder>/video.*``."""
    clips = []
    for video in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()):
        rel = video.relative_to(root)
        name = str(rel.parent if video.stem == "video" and rel.parent != Path(".") else rel.with_suffix(""))
        masks = video.parent / "masks"
        clips.append(Clip(name, video, masks if masks.is_dir() else None))
    return clips


def read_clip(clip: Clip, limit: int | None = None) -> Iterator[tuple[Frame, np.ndarray | None]]:
    """(frame, mask or None) of ``clip`` in order; frames carry the video's timestamps."""
    capture = cv2.VideoCapture(str(clip.video))
    if not capture.isOpened():
        raise FileNotFoundError(f"{clip.video} cannot be read as a video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index = 0
    try:
        while limit is None or index < limit:
            ok, bgr = capture.read()
            if not ok:
                return
            mask = None
            if clip.masks is not None:
                m = cv2.imread(str(clip.masks / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE)
                mask = None if m is None else m > 127
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / fps), mask
            index += 1
    finally:
        capture.release()


def configurations() -> dict[str, MatteOptions]:
    """Every post-processing configuration the evaluation compares, by name."""
    default = MatteOptions()
    nothing = dict(smoothing_s=0, motion=None, smoothing_sides=None, islands=False, close_unsure=False, refine=False,
                   guard=False, faces=False, hands=False)
    previous = {**nothing, "smoothing_s": PREVIOUS_SMOOTHING_S}
    configs = {
        "raw": MatteOptions(**nothing),
        "raw+smoothing": MatteOptions(**previous),
        "previous release": MatteOptions(**{**previous, "refine": True, "colour_guide": False}),
        "solidify": MatteOptions(**{**previous, "refine": True, "solidify": True}),
        "default": default,
    }
    for step in STEPS:
        if getattr(default, step):
            configs[f"default without {step.removesuffix('_s')}"] = replace(default, **{step: nothing[step]})
        else:
            configs[f"default with {step}"] = replace(default, **{step: True})
    return configs


# ------------------------------------------------------------------------------------------ measures

def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1 when both are empty)."""
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (bool): the mask minus its 3×3 erosion."""
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float | None = None) -> float:
    """DAVIS's boundary F-measure: precision and recall of boundary pixels matched within ``tolerance``
    pixels (default 0.8 % of the diagonal), F = 2PR/(P+R)."""
    h, w = truth.shape
    tol = tolerance if tolerance is not None else BOUNDARY_TOLERANCE * math.hypot(h, w)
    bp, bt = outline(pred), outline(truth)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    # Distance of every pixel to the nearest boundary pixel of the other mask.
    to_truth = cv2.distanceTransform((~bt).astype(np.uint8), cv2.DIST_L2, 5)
    to_pred = cv2.distanceTransform((~bp).astype(np.uint8), cv2.DIST_L2, 5)
    precision = float((to_truth[bp] <= tol).mean())
    recall = float((to_pred[bt] <= tol).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def margin_px(mask: np.ndarray) -> int:
    return max(1, round(MARGIN * math.sqrt(np.count_nonzero(mask))))


@dataclass(frozen=True)
class Truth:
    """A frame's mask and the regions it is judged in, made once per frame for every configuration."""

    mask: np.ndarray    # bool H×W, the person
    inside: np.ndarray  # the interior: the mask eroded by margin_px
    beyond: np.ndarray  # the background beyond the mask dilated likewise
    band: np.ndarray    # the boundary band (models.training.boundary.boundary_band)

    @classmethod
    def of(cls, mask: np.ndarray) -> Truth:
        disk = _disk(margin_px(mask))
        m8 = mask.astype(np.uint8)
        return cls(mask, cv2.erode(m8, disk).astype(bool), ~cv2.dilate(m8, disk).astype(bool),
                   boundary_band(mask.astype(np.float32)))


def interior_lost(person: np.ndarray, inside: np.ndarray) -> float | None:
    """Share of the truth's interior ``inside`` that ``person`` (α > 0.5) misses."""
    return None if not inside.any() else float((~person[inside]).mean())


def interior_sure_background(raw: np.ndarray, inside: np.ndarray) -> float | None:
    """Share of the truth's interior ``inside`` where the raw model is sure of background
    (α ≤ ``SURE_BACKGROUND``): what post-processing cannot give back without confident overrides."""
    return None if not inside.any() else float((raw[inside] <= SURE_BACKGROUND).mean())


def background_kept(person: np.ndarray, beyond: np.ndarray) -> float:
    """Share of the background ``beyond`` the truth that ``person`` keeps."""
    return float(person[beyond].mean()) if beyond.any() else 0.0


def part_lost(alpha: np.ndarray, part: np.ndarray) -> float:
    """Share of a face or hand mask where α < 0.5."""
    return float((alpha[part] < 0.5).mean())


def overrides(raw: np.ndarray, alpha: np.ndarray) -> float:
    """Share of the frame where the post-processing overturns a confident model."""
    flipped = ((raw >= SURE_PERSON) & (alpha < 0.5)) | ((raw <= SURE_BACKGROUND) & (alpha >= 0.5))
    return float(flipped.mean())


def still_pixels(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Pixels whose (5×5-blurred) grey level moves by less than ``STILL_LEVELS`` between two frames."""
    a, b = (cv2.blur(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32), (5, 5)) for x in (previous, current))
    return np.abs(a - b) < STILL_LEVELS


def flicker(previous: np.ndarray, current: np.ndarray, still: np.ndarray) -> float | None:
    """Mean |Δα| over the still pixels near the person (either α above 0.05)."""
    near = still & ((previous > 0.05) | (current > 0.05))
    return None if not near.any() else float(np.abs(current - previous)[near].mean())


def face_detail(rgb: np.ndarray, face: np.ndarray) -> float:
    """Variance of the Laplacian over the variance of the intensity inside ``face``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    var = float(grey[face].var())
    return float(lap[face].var()) / var if var > 0 else 0.0


def face_grey(rgb: np.ndarray, face: np.ndarray) -> float:
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[face].mean())


def frame_measures(alpha: np.ndarray, raw: np.ndarray, truth: Truth | None) -> dict[str, float]:
    """The per-frame measures of one configuration's ``alpha`` (without flicker)."""
    person = alpha > 0.5
    out = {"overrides": overrides(raw, alpha)}
    if truth is not None:
        out["iou"] = iou(person, truth.mask)
        out["boundary_f"] = boundary_f(person, truth.mask)
        if truth.band.any():
            out["band_alpha_error"] = float(np.abs(alpha[truth.band] - truth.mask[truth.band]).mean())
        if truth.mask.any():
            lost = interior_lost(person, truth.inside)
            if lost is not None:
                out["interior_lost"] = lost
            out["background_kept"] = background_kept(person, truth.beyond)
    return out


# --------------------------------------------------------------------------------------- accumulate

@dataclass
class Tally:
    """Per-frame samples of one configuration on one clip."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    worst: list[tuple[float, int, np.ndarray]] = field(default_factory=list)  # (badness, index, thumbnail)

    def add(self, **values: float | None) -> None:
        for k, v in values.items():
            if v is not None:
                self.samples.setdefault(k, []).append(float(v))

    def extend(self, key: str, values: list[float]) -> None:
        if values:
            self.samples.setdefault(key, []).extend(values)

    def summary(self) -> dict[str, float]:
        out = {}
        for k, v in self.samples.items():
            a = np.asarray(v)
            out[k] = float(a.mean())
            if k in ("face_lost", "hand_lost"):
                out[f"{k}_p95"] = float(np.percentile(a, 95))
        return out


def badness(m: dict[str, float], faces: list[float]) -> float:
    """How bad a frame of the default looks: its IoU loss, else the worst face cut and overrides."""
    return 1 - m["iou"] if "iou" in m else max(faces, default=0.0) + m["overrides"]


def overlay(rgb: np.ndarray, alpha: np.ndarray, truth: np.ndarray | None, parts: Parts, side: int = 320) -> np.ndarray:
    """A thumbnail: the background dimmed and tinted where α < 0.5, the truth's outline green, faces and
    hands outlined yellow."""
    out = rgb.astype(np.float32)
    bg = alpha < 0.5
    out[bg] = out[bg] * 0.35 + np.array([120, 0, 0], np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    for mask, colour in ([(truth, (0, 255, 0))] if truth is not None else []) + \
            [(p, (255, 230, 0)) for p in parts.faces + parts.hands]:
        out[cv2.dilate(outline(mask).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)] = colour
    h, w = alpha.shape
    return cv2.resize(out, (side, round(h * side / w)), interpolation=cv2.INTER_AREA)


def evaluate_clip(clip: Clip, matting, configs: dict[str, MatteOptions], limit: int | None,
                  finder: PartFinder, pairs: list[tuple[str, str]], background: np.ndarray | None) -> dict:
    """Every configuration (and blend × harmonizer pair) over one clip: {config: summary}, worst frames."""
    posts = {name: MattePostprocess(o) for name, o in configs.items()}
    tallies = {name: Tally() for name in configs}
    model = Tally()  # measures of the raw answer alone, the same for every configuration
    previous: dict[str, np.ndarray] = {}
    prev_rgb = None
    looks = FaceLooks(pairs, background) if pairs and background is not None else None
    for frame, truth in read_clip(clip, limit):
        coarse = matting.coarse(frame).alpha  # what the pipeline's post-processing is given
        raw = enlarge(coarse, frame.size)
        parts = finder(frame.rgb)
        still = None if prev_rgb is None else still_pixels(prev_rgb, frame.rgb)
        regions = None if truth is None else Truth.of(truth)
        if regions is not None:
            model.add(interior_sure_background=interior_sure_background(raw, regions.inside))
        for name, post in posts.items():
            alpha = post(frame, Matte(coarse)).alpha
            m = frame_measures(alpha, raw, regions)
            faces = [part_lost(alpha, f) for f in parts.faces]
            t = tallies[name]
            t.add(**m, flicker=None if still is None else flicker(previous[name], alpha, still))
            t.extend("face_lost", faces)
            t.extend("hand_lost", [part_lost(alpha, h) for h in parts.hands])
            if name == "default":
                item = (badness(m, faces), frame.index)
                if len(t.worst) < WORST or item > t.worst[0][:2]:
                    entry = (*item, overlay(frame.rgb, alpha, truth, parts))
                    (heapq.heappush if len(t.worst) < WORST else heapq.heapreplace)(t.worst, entry)
                if looks is not None and parts.faces:
                    looks.add(frame, Matte(alpha), parts.faces)
            previous[name] = alpha
        prev_rgb = frame.rgb
    for post in posts.values():
        post.close()
    result = {"configs": {name: t.summary() for name, t in tallies.items()},
              "worst": sorted(tallies["default"].worst if "default" in tallies else [], reverse=True)}
    if model.samples:
        result["model"] = model.summary()
    if looks is not None:
        result["faces"] = looks.summary()
        looks.close()
    return result


class FaceLooks:
    """Face detail and grey level, relative to the camera, for every blend × harmonizer pair."""

    def __init__(self, pairs: list[tuple[str, str]], background: np.ndarray) -> None:
        self.pairs = pairs
        self.background = background
        self.blends = {b: registry.create("blend", b) for b in dict.fromkeys(b for b, _ in pairs)}
        self.harmonizers = {h: registry.create("harmonizer", h) for h in dict.fromkeys(h for _, h in pairs)}
        self.states = {p: (StreamState(live=False), StreamState(live=False)) for p in pairs}
        self.tally = {p: Tally() for p in pairs}
        self._fitted: dict[tuple[int, int], np.ndarray] = {}  # the background cover-fitted, by frame size

    def add(self, frame: Frame, matte: Matte, faces: list[np.ndarray]) -> None:
        bg = self._fitted.get(frame.size)
        if bg is None:
            bg = self._fitted[frame.size] = cover_fit(self.background, frame.size)
        camera = [(face_detail(frame.rgb, f), face_grey(frame.rgb, f)) for f in faces]
        for pair in self.pairs:
            blend_state, harmonizer_state = self.states[pair]
            composite = self.blends[pair[0]].blend(frame, matte, bg, blend_state)
            out = self.harmonizers[pair[1]].harmonize(composite, bg, frame, harmonizer_state)
            for face, (detail, grey) in zip(faces, camera):
                self.tally[pair].add(detail=face_detail(out, face) / max(detail, 1e-9),
                                     grey=face_grey(out, face) / max(grey, 1e-9))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per pair, the means over faces × frames; empty when no face was seen."""
        return {f"{b} + {h}": row for b, h in self.pairs if (row := self.tally[(b, h)].summary())}

    def close(self) -> None:
        for model in [*self.blends.values(), *self.harmonizers.values()]:
            model.close()
        for states in self.states.values():
            for s in states:
                s.close()


# ------------------------------------------------------------------------------------------- report

COLUMNS = (("iou", "IoU", ".3f"), ("boundary_f", "boundary F", ".3f"), ("band_alpha_error", "band α error", ".3f"), ("interior_lost", "interior lost", ".2%"),
           ("background_kept", "bg kept", ".2%"), ("face_lost", "face lost", ".2%"),
           ("face_lost_p95", "face lost p95", ".2%"), ("hand_lost", "hand lost", ".2%"),
           ("overrides", "overrides", ".3%"), ("flicker", "flicker", ".4f"))


def _cell(row: dict[str, float], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "–"


def table(report: dict) -> str:
    """Markdown: one table per clip and one for the mean over clips."""
    lines = []
    mean = {"configs": report["overall"], **({"model": report["model"]} if report.get("model") else {})}
    for clip, result in [*report["clips"].items(), ("mean over clips", mean)]:
        lines += [f"**{clip}**", "", "| configuration | " + " | ".join(c[1] for c in COLUMNS) + " |",
                  "|---" * (len(COLUMNS) + 1) + "|"]
        for name, row in result["configs"].items():
            lines.append(f"| {name} | " + " | ".join(_cell(row, k, f) for k, _, f in COLUMNS) + " |")
        if result.get("faces"):
            lines += ["", "| blend + harmonizer | face detail vs camera | face grey vs camera |", "|---|---|---|"]
            for pair, row in result["faces"].items():
                lines.append(f"| {pair} | {row['detail']:.3f} | {row['grey']:.3f} |")
        sure = result.get("model", {}).get("interior_sure_background")
        if sure is not None:
            lines += ["", f"The raw model is sure of background (α ≤ {SURE_BACKGROUND}) on {sure:.2%} of the "
                          "interior: no post-processing gives that back without confident overrides."]
        lines.append("")
    return "\n".join(lines)


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of every measure over the rows that have it."""
    values: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            values.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in values.items()}


def overall(clips: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The mean over clips of every measure a clip has, per configuration."""
    names = dict.fromkeys(name for result in clips.values() for name in result["configs"])
    return {name: mean_rows([r["configs"][name] for r in clips.values() if name in r["configs"]]) for name in names}


def contact_sheet(worst: list[tuple[float, int, np.ndarray]]) -> np.ndarray:
    """The worst frames' thumbnails in a row, each captioned with its frame index and badness."""
    tiles = []
    for score, index, thumb in worst:
        tile = thumb.copy()
        cv2.putText(tile, f"#{index}  {score:.3f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """``rgb`` as a PNG at ``path`` (its folder made when missing), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # the temporary name keeps the suffix, so OpenCV writes a PNG
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")


def evaluate(root: Path, out: Path | None, names: list[str] | None = None, limit: int | None = None,
             pairs: list[tuple[str, str]] | None = None, background: np.ndarray | None = None,
             config_names: list[str] | None = None, matting_name: str = DEFAULT_MATTING) -> dict:
    found = find_clips(root)
    if not found:
        raise SystemExit(f"no video found under {root}; pass --data with a folder of clips")
    unknown = sorted(set(names or ()) - {c.name for c in found})
    if unknown:
        raise SystemExit(f"--clips: no clip named {', '.join(unknown)} under {root}; "
                         f"choose from {', '.join(c.name for c in found)}")
    clips = [c for c in found if names is None or c.name in names]
    configs = {k: v for k, v in configurations().items() if config_names is None or k in config_names}
    matting = registry.create("matting", matting_name)
    report: dict = {"matting": matting_name, "clips": {},
                    "configurations": {k: vars(v) for k, v in configs.items()}}
    try:
        for clip in clips:
            matting.reset()  # a model that tracks (the pose model) starts each clip afresh
            finder = PartFinder()
            try:
                result = evaluate_clip(clip, matting, configs, limit, finder, pairs or [], background)
            finally:
                finder.close()
            if out is not None and result["worst"]:
                write_png(out / f"worst-{clip.name.replace('/', '-')}.png", contact_sheet(result["worst"]))
            result["worst"] = [index for _, index, _ in result["worst"]]
            report["clips"][clip.name] = result
            print(f"{clip.name}: done", flush=True)
    finally:
        matting.close()
    report["overall"] = overall(report["clips"])
    model = mean_rows([r["model"] for r in report["clips"].values() if "model" in r])
    if model:
        report["model"] = model
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m models.training.evaluate_footage", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of clips (searched recursively)")
    p.add_argument("--out", type=Path, help="folder for report.md, report.json and the contact sheets")
    p.add_argument("--clips", help="comma-separated clip names (default: all)")
    p.add_argument("--frames", type=ranged(1, 10**6, whole=True), help="at most this many frames per clip")
    p.add_argument("--configs", help="comma-separated configurations (default: all; the face measures use 'default')")
    p.add_argument("--blends", default="", help="comma-separated blends for the face measures")
    p.add_argument("--harmonizers", default="none", help="comma-separated harmonizers for the face measures")
    p.add_argument("--background", type=Path, help="image the face measures composite over")
    p.add_argument("--matting", default=DEFAULT_MATTING, choices=registry.usable("matting"), metavar="NAME",
                   help=f"the registered matting model that makes the raw matte (default {DEFAULT_MATTING}, the "
                   "app's; mediapipe is the selfie model alone)")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        p.error(f"--data {args.data} is not a folder; pass the folder that holds the clips")
    if args.out is not None:  # made before the clips are read, so a long run cannot fail at its end
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            p.error(f"--out {args.out}: cannot create the folder ({exc.strerror}); choose a folder you can write to")
    pairs = [(b, h) for b in args.blends.split(",") if b for h in args.harmonizers.split(",") if h]
    background = None
    if pairs:
        if args.background is None:
            p.error("--blends needs --background IMAGE to composite over")
        bgr = cv2.imread(str(args.background))
        if bgr is None:
            p.error(f"--background {args.background} is not an image; pass a JPEG or PNG file")
        background = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cv2.setNumThreads(1)  # deterministic and comparable to one pipeline thread
    names = args.configs.split(",") if args.configs else None
    unknown = set(names or ()) - set(configurations())
    if unknown:
        p.error(f"--configs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(configurations())}")
    report = evaluate(args.data, args.out, args.clips.split(",") if args.clips else None, args.frames, pairs,
                      background, names, args.matting)
    if args.out is not None:
        write_json(args.out / "report.json", report)
    text = table(report)
    print(text)
    if args.out is not None:
        with atomic_path(args.out / "report.md") as tmp:
            tmp.write_text(text)
    return report


if __name__ == "__main__":
    command.run(main)
