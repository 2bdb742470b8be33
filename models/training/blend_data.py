"""Triplets for the blending network (Xing et al., ACM MM 2022, §4.2).

A sample is what the live pipeline sees at the person's outline, with the answer:

* **source** S = α·F + (1−α)·A — the camera frame: the person over the *old* background A;
* **alpha** α̃ — the imperfect matte our real-time matting gives for S;
* **background** B — the complete new background;
* **target** T = α·F + (1−α)·B — the same person, perfectly matted, over B;
* **true alpha** α (for the boundary band of Eq. 1 and the α term of the loss).

No matting data set can be downloaded here, so foregrounds (F, α) come from two
places, both over real photo textures of the corpus:

1. **People** — the corpus photos where a face is found: MediaPipe's mask turned into
   a trimap (its confident inside and outside, eroded), then closed-form matting
   (Levin et al. 2008, ``pymatting``) solves the soft band; ML foreground estimation
   (Germer et al. 2020, ``pymatting``) gives the person's own edge colour. For these,
   α̃ is often MediaPipe's real answer on S (the deployed behaviour exactly).
2. **Cut-outs** — a region of another real photo cut with a person silhouette or a
   random shape, softened by 0.5–1.5 px, with procedural hair: thin anti-aliased
   strands of partial opacity growing outwards from the upper outline, plus now
   and then a semi-transparent veil. These teach fine structure the few people lack.

Users with a matting data set pass ``--foregrounds DIR`` holding ``fg/`` and ``alpha/``
images with matching names (the layout of the common portrait-matting sets).

3. **Real matte errors** — frames of real video with a reference mask per frame
   (:func:`models.training.footage.footage_shots`): the source is the camera frame itself, α̃
   is what the pipeline really gave for it (the model and the post-processing, in stream order),
   and the target puts the person's reference layer (closed-form matting on the annotation) over
   a new background. These carry the errors no degradation model draws: the model's misses on
   real bodies, motion blur, real fringes and compression.

The degradation model (:func:`degrade`) is calibrated on what MediaPipe does to the
people above at the working size (long side 512): a smooth ramp 6–14 px wide where
the true edge is 1–3 px (σ ≈ 2–5 px after its 256-px output is enlarged), the outline
off by up to ±6 px, more often outwards (the halo), thin structures (hair, poles) at
half confidence, and occasional stray blobs. It draws from those ranges, and the
jitter between two calls stands for the temporal jitter of a live matte.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from models.frame import Frame
from models.io import IMAGE_EXTENSIONS
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.ops.files import atomic_path
from models.paths import cache_dir
from models.training.data import Item, PersonMasker, _chw, load_rgb, place_silhouette, random_mask, stable_seed

if TYPE_CHECKING:
    from models.training.footage import Shot

WORK_LONG_SIDE = 512   # the learned blend's working size for a 720p or 1080p frame
CROP = 128             # training crop, centred near the outline
TRIMAP_BAND = 0.025    # half-width of the unknown band handed to closed-form matting (× long side)
#: A sample's layers, in the order the triplet makers return them.
SAMPLE_LAYERS = ("source", "background", "target", "alpha", "true_alpha", "excluded")


@dataclass(frozen=True)
class Foreground:
    """A foreground layer: colour uint8 H×W×3 and its alpha float32 H×W; ``person`` when it is a real person."""

    rgb: np.ndarray
    alpha: np.ndarray
    person: bool


# --- Foregrounds ---------------------------------------------------------------------------

def trimap_from_mask(mask: np.ndarray, band: int) -> np.ndarray:
    """1 (sure person), 0 (sure background) and 0.5 (unknown) from a soft mask; ``band`` px each side."""
    core = (mask > 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    trimap = np.full(mask.shape, 0.5, np.float64)
    trimap[cv2.erode(core, kernel) > 0] = 1.0
    trimap[cv2.dilate(core, kernel) == 0] = 0.0
    return trimap


def matte_person(rgb: np.ndarray, mask: np.ndarray, band: int | None = None) -> Foreground:
    """Closed-form alpha on the band around a mask's outline (``band`` px each side; default
    :data:`TRIMAP_BAND` of the long side, for MediaPipe's outline), then the person's own edge colour."""
    import pymatting

    image = rgb.astype(np.float64) / 255
    trimap = trimap_from_mask(mask, band or max(2, round(TRIMAP_BAND * max(rgb.shape[:2]))))
    alpha = np.clip(pymatting.estimate_alpha_cf(image, trimap), 0, 1)
    fg = pymatting.estimate_foreground_ml(image, alpha)
    return Foreground(np.clip(fg * 255 + 0.5, 0, 255).astype(np.uint8), alpha.astype(np.float32), True)


def people(items: Sequence[Item], masker: PersonMasker, cache: Path | None = None) -> list[Foreground]:
    """Matted people of ``items`` (photos where a face is found), cached on disk by content."""
    cache = cache or cache_dir() / "training" / "blend-people"
    out = []
    for item in items:
        rgb = load_rgb(item.real, WORK_LONG_SIDE)
        key = hashlib.sha256(item.real.read_bytes()).hexdigest()[:24] + f"-{rgb.shape[1]}x{rgb.shape[0]}"
        fg_path, alpha_path = cache / f"{key}-fg.png", cache / f"{key}-alpha.png"
        if not alpha_path.exists():
            mask = masker(item.real, rgb)
            if mask is None:
                continue
            layer = matte_person(rgb, mask)
            cache.mkdir(parents=True, exist_ok=True)
            with atomic_path(fg_path) as tmp:
                cv2.imwrite(str(tmp), cv2.cvtColor(layer.rgb, cv2.COLOR_RGB2BGR))
            with atomic_path(alpha_path) as tmp:
                cv2.imwrite(str(tmp), np.round(layer.alpha * 65535).astype(np.uint16))
        fg = cv2.cvtColor(cv2.imread(str(fg_path)), cv2.COLOR_BGR2RGB)
        alpha = cv2.imread(str(alpha_path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
        out.append(Foreground(fg, alpha, True))
    return out


def folder_foregrounds(root: Path) -> list[Foreground]:
    """``root/fg/NAME`` and ``root/alpha/NAME`` pairs (any image extension, matched by stem)."""
    fg_dir, alpha_dir = root / "fg", root / "alpha"
    if not fg_dir.is_dir() or not alpha_dir.is_dir():
        raise FileNotFoundError(f"{root} needs fg/ and alpha/ folders of matching images")
    alphas = {p.stem: p for p in alpha_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    out = []
    for path in sorted(fg_dir.iterdir()):
        if path.stem not in alphas:
            continue
        rgb = load_rgb(path, WORK_LONG_SIDE)
        a = cv2.imread(str(alphas[path.stem]), cv2.IMREAD_UNCHANGED)
        a = a[..., 0] if a.ndim == 3 else a
        a = a.astype(np.float32) / (65535 if a.dtype == np.uint16 else 255)
        out.append(Foreground(rgb, cv2.resize(a, rgb.shape[1::-1], interpolation=cv2.INTER_AREA), True))
    if not out:
        raise FileNotFoundError(f"no fg/alpha pairs with matching names in {root}")
    return out


def hair_strands(alpha: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """``alpha`` with thin, partly transparent strands growing outwards from its upper outline."""
    h, w = alpha.shape
    edge = cv2.Canny((alpha > 0.5).astype(np.uint8) * 255, 50, 150)
    ys, xs = np.nonzero(edge)
    if ys.size == 0:
        return alpha
    upper = ys < np.quantile(ys, 0.5)   # hair grows on the head, not under the arms
    if not upper.any():                 # a flat outline (one row): all of it is the top
        upper[:] = True
    ys, xs = ys[upper], xs[upper]
    centre = np.array([xs.mean(), ys.mean() + h])  # strands point away from a point below
    # Drawn at 4× and reduced once: strands thinner than a pixel become partial alpha, as real hair does.
    canvas = np.zeros((h * 4, w * 4), np.float32)
    for _ in range(count):
        i = rng.integers(ys.size)
        p = np.array([xs[i], ys[i]], np.float64)
        direction = p - centre
        direction /= np.linalg.norm(direction) + 1e-6
        length, curl = rng.uniform(0.01, 0.06) * max(h, w), rng.uniform(-0.08, 0.08)
        points = [p.copy()]
        for _ in range(8):
            c, s = np.cos(curl), np.sin(curl)
            direction = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
            p = p + direction * length / 8
            points.append(p.copy())
        cv2.polylines(canvas, [(np.array(points) * 4).astype(np.int32)], False, float(rng.uniform(0.5, 1.0)),
                      thickness=int(rng.integers(1, 5)), lineType=cv2.LINE_AA)
    canvas = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    return np.maximum(alpha, canvas)


def cutout(texture: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> Foreground:
    """A real-photo texture cut with ``shape`` (float32 mask, same size), soft edge, hair and maybe a veil."""
    sigma = rng.uniform(0.5, 1.5)
    alpha = cv2.GaussianBlur((shape > 0.5).astype(np.float32), (0, 0), sigma)
    if rng.random() < 0.7:
        alpha = hair_strands(alpha, rng, int(rng.integers(10, 60)))
    if rng.random() < 0.2:  # a semi-transparent veil or scarf beside the outline
        veil = cv2.GaussianBlur(random_mask(max(alpha.shape), rng), (0, 0), 2)[:alpha.shape[0], :alpha.shape[1]]
        near = cv2.GaussianBlur(_shift_edge(alpha, 0.04 * max(alpha.shape)), (0, 0), 4)  # beside the outline
        alpha = np.maximum(alpha, veil * near * rng.uniform(0.2, 0.6))
    return Foreground(texture, np.clip(alpha, 0, 1), False)


# --- The imperfect matte ---------------------------------------------------------------------

def _shift_edge(alpha: np.ndarray, px: float) -> np.ndarray:
    """The outline moved outwards (px > 0) or inwards by about ``px`` pixels, keeping it soft."""
    r = int(round(abs(px)))
    if r == 0:
        return alpha
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(alpha, kernel) if px > 0 else cv2.erode(alpha, kernel)


def degrade(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An imperfect matte like MediaPipe's at the working size (ranges in the module docstring)."""
    h, w = alpha.shape
    a = alpha
    if rng.random() < 0.8:  # a low-resolution model enlarged
        small = rng.uniform(0.25, 0.6)
        a = cv2.resize(cv2.resize(a, (max(8, round(w * small)), max(8, round(h * small))),
                                  interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
    a = _shift_edge(a, rng.choice([rng.uniform(-3, 1), rng.uniform(0, 6)], p=[0.35, 0.65]))
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(1.5, 5.0))
    if rng.random() < 0.3:  # over-confident: a steeper ramp around a random threshold
        t, k = rng.uniform(0.3, 0.7), rng.uniform(2, 6)
        a = 1 / (1 + np.exp(-k * (a - t) * 4))
    if rng.random() < 0.3:  # see-through patches inside the person
        patch = cv2.GaussianBlur(random_mask(max(h, w), rng)[:h, :w], (0, 0), 4)
        a = a * (1 - rng.uniform(0.2, 0.6) * patch)
    if rng.random() < 0.3:  # background stuck to the person: blobs of partial confidence near the outline
        blob = _shift_edge((alpha > 0.5).astype(np.float32), 12) - _shift_edge((alpha > 0.5).astype(np.float32), 2)
        spots = cv2.GaussianBlur((rng.random((h, w)) < 0.002).astype(np.float32), (0, 0), 5)
        a = np.maximum(a, np.clip(blob * spots * 40, 0, 1) * rng.uniform(0.4, 0.9))
    if rng.random() < 0.5:  # frame-to-frame jitter: a sub-pixel shift
        m = np.float32([[1, 0, rng.uniform(-1.5, 1.5)], [0, 1, rng.uniform(-1.5, 1.5)]])
        a = cv2.warpAffine(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return np.clip(a, 0, 1).astype(np.float32)


# --- The pipeline's matte ------------------------------------------------------------------

class PipelineMatte:
    """The matte the live pipeline hands a blend: ``raw`` is the matting model's answer for an RGB
    frame, ``refine`` the pipeline's post-processing of any matte (a still: no temporal smoothing)."""

    def __init__(self, name: str = "mediapipe") -> None:
        from models import registry

        self.model = registry.create("matting", name)
        self.post = MattePostprocess(MatteOptions(smoothing_s=0))

    def raw(self, rgb: np.ndarray) -> np.ndarray:
        return self.model.matte(Frame(rgb, 0, 0.0)).alpha

    def refine(self, rgb: np.ndarray, alpha: np.ndarray) -> Matte:
        return self.post(Frame(rgb, 0, 0.0), Matte(alpha))


# --- Triplets --------------------------------------------------------------------------------

def compose(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """α·F + (1−α)·B in float, rounded to uint8 as a camera or a file would."""
    a = alpha[..., None]
    out = a * fg.astype(np.float32) + (1 - a) * bg.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _cover(rgb: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``rgb`` resized to cover ``size`` (w, h), maybe flipped."""
    w, h = size
    ih, iw = rgb.shape[:2]
    scale = max(w / iw, h / ih) * rng.uniform(1.0, 1.5)
    cw, ch = min(iw, round(w / scale)), min(ih, round(h / scale))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    out = cv2.resize(rgb[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


class BlendTriplets(Dataset):
    """Triplets over real photos; ``train=True`` draws random crops around the outline, else whole frames.

    A sample is a dict of float tensors in [0,1]: ``source``, ``background``, ``target`` 3×H×W and
    ``alpha`` (imperfect), ``true_alpha``, ``excluded`` (1 where the matte post-processing decided the
    background's, :attr:`Matte.excluded`) 1×H×W. Held-out samples are fixed by their index.
    A ``shot_share`` of the samples come from ``shots`` of real footage (the module's third kind).
    """

    def __init__(self, foregrounds: Sequence[Foreground], photos: Sequence[np.ndarray], *, train: bool,
                 length: int, seed: int = 0, crop: int = CROP, cutout_share: float = 0.6,
                 matting: Callable[[np.ndarray], np.ndarray] | None = None,
                 refine: Callable[[np.ndarray, np.ndarray], Matte] | None = None,
                 shots: Sequence[Shot] = (), shot_share: float = 0.0) -> None:
        if not photos:
            raise ValueError("no background photos")
        self.shots, self.shot_share = list(shots), shot_share if shots else 0.0
        self.people = [f for f in foregrounds if f.person]
        self.photos = list(photos)
        self.silhouettes = [f.alpha for f in self.people]
        self.train, self.length, self.seed, self.crop = train, length, seed, crop
        self.cutout_share = cutout_share if self.people else 1.0
        # ``matting(S)``: a model's real answer, which replaces the degraded matte for people half the time;
        # ``refine(S, α̃)``: the pipeline's matte post-processing, which every matte a blend sees went through.
        self.matting, self.refine = matting, refine
        self.epoch = 0

    @property
    def people_count(self) -> int:
        return len(self.people)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _foreground(self, rng: np.random.Generator) -> Foreground:
        if rng.random() >= self.cutout_share:
            return self.people[rng.integers(len(self.people))]
        texture = self.photos[rng.integers(len(self.photos))]
        h, w = texture.shape[:2]
        side = max(h, w)
        if self.silhouettes and rng.random() < 0.6:
            shape = place_silhouette(self.silhouettes[rng.integers(len(self.silhouettes))], side, rng)
        else:
            shape = random_mask(side, rng)
        return cutout(texture, shape[side - h:, :w] if shape.shape[0] > h else shape[:h, :w], rng)

    def _window(self, alpha: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
        """(y, x, side) of a square crop with the outline inside (the frame's short side at most)."""
        h, w = alpha.shape
        side = min(h, w, round(self.crop * rng.uniform(1.0, 2.0)))
        band = np.argwhere((alpha > 0.05) & (alpha < 0.95))
        cy, cx = band[rng.integers(len(band))] if len(band) else (h // 2, w // 2)
        y = int(np.clip(cy - side // 2 + rng.integers(-side // 4, side // 4 + 1), 0, h - side))
        x = int(np.clip(cx - side // 2 + rng.integers(-side // 4, side // 4 + 1), 0, w - side))
        return y, x, side

    def _synthetic(self, rng: np.random.Generator) -> list[np.ndarray]:
        """The :data:`SAMPLE_LAYERS` of a layer over a photo: its source over another, the new background, the
        target, the imperfect α, the true α and what the post-processing excluded."""
        layer = self._foreground(rng)
        h, w = layer.alpha.shape
        old, new = (_cover(self.photos[rng.integers(len(self.photos))], (w, h), rng) for _ in range(2))
        source = compose(layer.rgb, layer.alpha, old)
        target = compose(layer.rgb, layer.alpha, new)
        if layer.person and self.matting is not None and rng.random() < 0.5:
            imperfect = self.matting(source)
        else:
            imperfect = degrade(layer.alpha, rng)
        excluded = np.zeros((h, w), np.float32)
        if self.refine is not None:
            matte = self.refine(source, imperfect)
            imperfect = matte.alpha
            if matte.excluded is not None:
                excluded[matte.excluded_at((w, h))] = 1
        return [source, new, target, imperfect, layer.alpha, excluded]

    def _real(self, rng: np.random.Generator) -> list[np.ndarray]:
        """The same of a real shot: the camera frame, the pipeline's matte, its reference layer over a photo."""
        shot = self.shots[rng.integers(len(self.shots))]
        h, w = shot.matte.shape
        new = _cover(self.photos[rng.integers(len(self.photos))], (w, h), rng)
        target = compose(shot.reference.rgb, shot.reference.alpha, new)
        return [shot.rgb, new, target, shot.matte, shot.reference.alpha, shot.excluded]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        seed = [self.seed, self.epoch, index] if self.train else [self.seed, stable_seed("blend-test"), index]
        rng = np.random.default_rng(seed)
        real = self.shot_share > 0 and rng.random() < self.shot_share
        layers = self._real(rng) if real else self._synthetic(rng)
        if self.train:
            y, x, side = self._window(layers[SAMPLE_LAYERS.index("true_alpha")], rng)
            flip = rng.random() < 0.5
            layers = [cv2.resize(im[y:y + side, x:x + side], (self.crop, self.crop), interpolation=cv2.INTER_AREA)
                      for im in layers]
            layers = [np.ascontiguousarray(im[:, ::-1]) if flip else im for im in layers]
        return {name: _chw(im) for name, im in zip(SAMPLE_LAYERS, layers)}
