"""Training and evaluation data: real images with a foreground mask.

A ``--data`` spec is one of:

* ``registry``: real photos shipped inside installed packages (:func:`registry_photos`);
* ``corpus`` or ``corpus:DIR``: the built training corpus (``python -m models.training.corpus
  build``; default DIR: the app cache's ``corpus/``) with its fixed train/val/test split by scene;
* a folder of images, searched recursively;
* an iHarmony4 root or subset (``composite_images/``, ``masks/``, ``real_images/``
  and ``<Subset>_train.txt`` / ``<Subset>_test.txt``).

Photos are split into train/test by a hash of their *group* (the same scene at
several sizes, or a stereo pair, share a group), so evaluation never sees a
training scene; iHarmony4 uses its own split files.

Foreground masks: the person mask from our MediaPipe matting when a face is
detected (cached on disk), person silhouettes moved onto other photos, or random
smooth shapes; iHarmony4 brings its own masks.
"""
from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from models.harmonizers.harmonizer.filters import FILTER_ORDER
from models.io import IMAGE_EXTENSIONS
from models.io import read_image_rgb as read_rgb
from models.ops.files import atomic_path
from models.paths import cache_dir
from models.training.corpus import corpus_images
from models.training.synthesis import complete_background

SPLITS = ("train", "test")
CORPUS_SPLITS = ("train", "val", "test")  # only the corpus has a validation split
TEST_FRACTION = 0.2
SPLIT_SALT = "harmonicam-split-v1"
MAX_SIDE = 640           # photos are kept in memory at this size; crops are taken from it
PRELOAD_LIMIT = 1000     # sets up to this many images are kept in memory
MIN_FOREGROUND = 0.03    # a view whose mask covers less than this gets a random shape instead
_SIZE_SUFFIX = re.compile(r"_\d+x\d+$")
_STEREO_SUFFIX = re.compile(r"_(left|right)$")
_PACKAGE_PHOTOS = (  # (module, folder beside its __init__, files)
    ("skimage.data", ".", ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
                           "motorcycle_left.png", "motorcycle_right.png")),
    ("matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg",)),
    ("sklearn.datasets", "images", ("china.jpg", "flower.jpg")),
)
_SYSTEM_BACKGROUNDS = Path("/usr/share/backgrounds")


@dataclass(frozen=True)
class Item:
    """One real image. iHarmony4 items also carry their mask and, in the test split, a real composite."""

    real: Path
    group: str
    mask: Path | None = None
    composite: Path | None = None


# --- Collecting -------------------------------------------------------------------------

def source_name(path: Path) -> str:
    """A machine-independent name for a photo: relative to site-packages when it comes from a package."""
    parts = path.parts
    return "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else str(path)


def _stem_key(path: Path) -> str:
    return _SIZE_SUFFIX.sub("", path.stem.lower())


def group_of(path: Path) -> str:
    """The split key of a photo: its name without a size suffix or a stereo side."""
    return _STEREO_SUFFIX.sub("", _stem_key(path))


def split_of(group: str, test_fraction: float = TEST_FRACTION) -> str:
    """``"test"`` or ``"train"``, fixed by a hash of ``group`` (same on every machine)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{group}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2 ** 64 < test_fraction else "train"


def _dedupe(paths: Iterable[Path]) -> list[Path]:
    # The same picture at several resolutions (Elephants, Elephants_3840x2160…) counts once.
    seen: dict[str, Path] = {}
    for p in sorted(paths, key=lambda p: (len(p.name), str(p))):
        seen.setdefault(_stem_key(p), p)
    return sorted(seen.values())


def looks_like_photo(path: Path) -> bool:
    """Rough test that tells photos from flat graphics: many distinct colours in a thumbnail."""
    bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
    if bgr is None:
        return False
    scale = 256 / max(bgr.shape[:2])
    thumb = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) // 8
    return len(np.unique(thumb.reshape(-1, 3), axis=0)) >= 100


def registry_photos(system_backgrounds: Path = _SYSTEM_BACKGROUNDS) -> list[Path]:
    """Real photos that installed packages ship, found offline.

    scikit-image's photo samples, matplotlib's Grace Hopper portrait and
    scikit-learn's china/flower (each when installed), and the JPEG photos under
    ``/usr/share/backgrounds`` (Debian wallpaper packages such as mate-backgrounds
    and lomiri-wallpapers-16.04), without graphics and without resolution duplicates.
    """
    paths: list[Path] = []
    for module, folder, names in _PACKAGE_PHOTOS:
        try:
            base = Path(importlib.import_module(module).__file__).parent / folder
        except ImportError:
            continue
        paths += [base / name for name in names]
    if system_backgrounds.is_dir():
        paths += [p for p in sorted(system_backgrounds.rglob("*"))
                  if p.suffix.lower() in (".jpg", ".jpeg") and looks_like_photo(p)]
    return _dedupe(p for p in paths if p.is_file())


def folder_photos(root: Path) -> list[Path]:
    """Every image under ``root`` (recursive), without resolution duplicates."""
    return _dedupe(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def is_iharmony4(root: Path) -> bool:
    """True for an iHarmony4 subset folder or a folder that holds such subsets."""
    return (root / "composite_images").is_dir() or any(
        (sub / "composite_images").is_dir() for sub in root.iterdir() if sub.is_dir())


def iharmony4_items(root: Path, split: str) -> list[Item]:
    """Items of an iHarmony4 root or subset for ``split``, using its ``<Subset>_<split>.txt``.

    Composite ``a0001_1_3.jpg`` pairs with mask ``masks/a0001_1.png`` and real image
    ``real_images/a0001.jpg``. Training items are the distinct (real, mask) pairs
    (composites are synthesised from them); test items keep the real composite.
    """
    subsets = [root] if (root / "composite_images").is_dir() else sorted(
        sub for sub in root.iterdir() if (sub / "composite_images").is_dir())
    items: dict[tuple[Path, Path] | Path, Item] = {}
    for sub in subsets:
        listing = sub / f"{sub.name}_{split}.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing} is missing; an iHarmony4 subset needs its split files")
        for line in listing.read_text().split():
            name = Path(line).name
            parts = Path(name).stem.split("_")
            mask = sub / "masks" / ("_".join(parts[:-1]) + ".png")
            real = sub / "real_images" / ("_".join(parts[:-2]) + ".jpg")
            if split == "train":
                items.setdefault((real, mask), Item(real, f"{sub.name}/{real.stem}", mask))
            else:
                comp = sub / "composite_images" / name
                items[comp] = Item(real, f"{sub.name}/{real.stem}", mask, comp)
    return list(items.values())


def corpus_root(spec: str) -> Path | None:
    """The corpus folder of a ``corpus`` / ``corpus:DIR`` spec, or None for other specs."""
    if spec == "corpus":
        return cache_dir() / "corpus"
    return Path(spec[len("corpus:"):]) if spec.startswith("corpus:") else None


def collect(specs: Sequence[str], split: str) -> list[Item]:
    """Items of ``split`` from ``--data`` specs (``corpus``, ``registry``, a folder, an iHarmony4 root).

    ``val`` exists only in the corpus; corpus items are grouped by their scene id.
    """
    if split not in CORPUS_SPLITS:
        raise ValueError(f"unknown split {split!r}")
    items: list[Item] = []
    for spec in specs:
        root = corpus_root(spec)
        if root is not None:
            items += [Item(path, scene) for path, scene in corpus_images(root, split)]
            continue
        if split not in SPLITS:
            raise ValueError(f"--data {spec} has no {split!r} split; only the corpus has one")
        if spec == "registry":
            photos = registry_photos()
        else:
            root = Path(spec)
            if not root.is_dir():
                raise FileNotFoundError(f"--data {spec}: not 'registry' and not a folder")
            if is_iharmony4(root):
                items += iharmony4_items(root, split)
                continue
            photos = folder_photos(root)
        items += [Item(p, group_of(p)) for p in photos if split_of(group_of(p)) == split]
    if not items:
        raise ValueError(f"no {split} images found in {', '.join(specs)}")
    return items


# --- Masks --------------------------------------------------------------------------------

class PersonMasker:
    """Person mask of a photo, or None when no face is found; cached by file content.

    MediaPipe's selfie segmenter assumes a person is present (it also segments
    cats and flowers), so a face detector (MediaPipe's short-range model, bundled
    in the wheel) decides first whether the photo shows a person.
    """

    FACE_SCORE = 0.7
    FACE_MODEL = Path("modules") / "face_detection" / "face_detection_short_range.tflite"

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache or cache_dir() / "training" / "person-masks"
        self._faces = self._matting = None

    def _models(self):
        if self._faces is None:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision

            from models.ops.native_logs import quiet_native_logs
            from models.registry import create

            model = Path(mp.__file__).parent / self.FACE_MODEL
            with quiet_native_logs():
                self._faces = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_buffer=model.read_bytes()),
                    min_detection_confidence=self.FACE_SCORE))
                self._matting = create("matting", "mediapipe")
        return self._faces, self._matting

    def _compute(self, rgb: np.ndarray) -> np.ndarray | None:
        import mediapipe as mp

        from models.frame import Frame
        from models.ops.native_logs import quiet_native_logs

        faces, matting = self._models()
        with quiet_native_logs():
            found = faces.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                          data=np.ascontiguousarray(rgb))).detections
            return matting.matte(Frame(rgb, 0, 0.0)).alpha if found else None

    def __call__(self, path: Path, rgb: np.ndarray) -> np.ndarray | None:
        """Soft person alpha (float32, same size as ``rgb``) or None."""
        key = hashlib.sha256(path.read_bytes()).hexdigest()[:24] + f"-{rgb.shape[1]}x{rgb.shape[0]}"
        png, none = self.cache / f"{key}.png", self.cache / f"{key}.none"
        if none.exists():
            return None
        if png.exists():
            return cv2.imread(str(png), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        alpha = self._compute(rgb)
        self.cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(none if alpha is None else png) as tmp:
            if alpha is not None:
                cv2.imwrite(str(tmp), np.round(alpha * 255).astype(np.uint8))
        return alpha


def random_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft, non-empty random region (ellipses, star polygons, blobs) with blurred edges.

    Float32 size×size in [0,1], covering about 5–70 % of the image.
    """
    while True:
        canvas = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(1, 3)):
            kind = rng.integers(3)
            centre = rng.uniform(0.2, 0.8, 2) * size
            if kind == 0:
                axes = (rng.uniform(0.1, 0.4, 2) * size).astype(int)
                cv2.ellipse(canvas, tuple(centre.astype(int)), tuple(axes), rng.uniform(0, 180), 0, 360, 255, -1)
            elif kind == 1:
                n = rng.integers(3, 10)
                angles = np.sort(rng.uniform(0, 2 * np.pi, n))
                radii = rng.uniform(0.1, 0.4, n) * size
                pts = centre + np.stack((np.cos(angles), np.sin(angles)), 1) * radii[:, None]
                cv2.fillPoly(canvas, [pts.astype(np.int32)], 255)
            else:
                cells = int(rng.integers(3, 7))
                noise = cv2.resize(rng.random((cells, cells)).astype(np.float32), (size, size),
                                   interpolation=cv2.INTER_CUBIC)
                canvas[noise > np.quantile(noise, rng.uniform(0.5, 0.9))] = 255
        sigma = rng.uniform(0.005, 0.03) * size
        mask = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), sigma)
        if 0.05 <= mask.mean() <= 0.7:
            return mask


def place_silhouette(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A person alpha moved onto a size×size canvas like a webcam subject (bottom edge, any x)."""
    ys, xs = np.nonzero(alpha > 0.5)
    crop = alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = rng.uniform(0.5, 1.0) * size / crop.shape[0]
    h = min(size, max(1, round(crop.shape[0] * scale)))
    w = min(size, max(1, round(crop.shape[1] * scale)))
    crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = np.zeros((size, size), np.float32)
    x = int(rng.integers(0, size - w + 1))
    out[size - h:, x:x + w] = crop
    return out


# --- Views ---------------------------------------------------------------------------------

def load_rgb(path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """RGB uint8, downscaled so that its long side is at most ``max_side``."""
    rgb = read_rgb(path)
    scale = max_side / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return rgb


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def random_view(images: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random crop (60–100 % of the short side, aspect 3:4–4:3), flip and 90° turn
    of aligned images, resized to size×size."""
    h, w = images[0].shape[:2]
    side = rng.uniform(0.6, 1.0) * min(h, w)
    aspect = np.sqrt(rng.uniform(0.75, 4 / 3))
    ch, cw = min(h, round(side / aspect)), min(w, round(side * aspect))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    flip, turns = rng.random() < 0.5, int(rng.integers(4))
    out = []
    for im in images:
        v = _resize(im[y:y + ch, x:x + cw], size)
        v = v[:, ::-1] if flip else v
        out.append(np.ascontiguousarray(np.rot90(v, turns)))
    return out


def _chw(image: np.ndarray) -> torch.Tensor:
    x = image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1) if x.ndim == 3 else x[None]))


def stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def scene_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole scene under another light: white balance, exposure and gamma, fg and bg alike.

    With few photos a network can learn each photo's foreground colours by heart;
    when the same photo comes under many lights, the right foreground colour
    follows the background's cast, so the network has to look at the background.
    """
    gains = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.75, 1.25)
    gamma = rng.uniform(0.8, 1.25)
    x = (rgb.astype(np.float32) / 255) ** gamma * gains.astype(np.float32)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


class HarmonizationDataset(Dataset):
    """Real image, foreground mask, synthesis arguments (and complete background) per sample.

    ``train=True``: ``length`` random views per epoch (crops, flips, 90° turns),
    reseeded by :meth:`set_epoch`, so every process of a DDP run draws the same
    sample for the same index. ``train=False``: the held-out set, ``variants``
    fixed samples per photo (whole image resized, seeded by its group) and one
    per real composite.

    A sample is a dict of float tensors: ``real`` 3×S×S and ``mask`` 1×S×S in
    [0,1], ``args`` (6,) in U(−1,1) for :func:`~models.training.synthesis.synthesize`
    (all zero for the ``identity_fraction`` of training samples that stay harmonious; ``identity``
    says which),
    ``background`` 3×S×S when ``with_background``, and ``composite`` for items that
    bring a real composite (iHarmony4 test).
    """

    def __init__(self, items: Sequence[Item], size: int, *, train: bool, length: int = 0,
                 variants: int = 1, seed: int = 0, with_background: bool = False,
                 person_masks: PersonMasker | None = None, identity_fraction: float = 0.0) -> None:
        self.items = list(items)
        self.identity_fraction = identity_fraction
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.with_background = with_background
        self._cache: dict[int, list[np.ndarray]] | None = {} if len(self.items) <= PRELOAD_LIMIT else None
        self.person = [person_masks(it.real, self._layers(i)[0])
                       if person_masks is not None and it.mask is None else None
                       for i, it in enumerate(self.items)]
        self.silhouettes = [m for m in self.person if m is not None]
        self.index = [] if train else [(i, k) for i, it in enumerate(self.items)
                                       for k in range(1 if it.composite else variants)]
        self.length = length if train else len(self.index)

    def _layers(self, i: int) -> list[np.ndarray]:
        """[real, mask?, composite?] of item ``i`` at the working size (cached for small sets)."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        item = self.items[i]
        rgb = load_rgb(item.real)
        layers = [rgb]
        if item.mask is not None:
            mask = cv2.imread(str(item.mask), cv2.IMREAD_GRAYSCALE)
            layers.append(cv2.resize(mask, rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255)
        if item.composite is not None:
            layers.append(cv2.resize(read_rgb(item.composite), rgb.shape[1::-1], interpolation=cv2.INTER_AREA))
        if self._cache is not None:
            self._cache[i] = layers
        return layers

    @property
    def people(self) -> int:
        """How many photos got a person mask."""
        return len(self.silhouettes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> tuple[int, np.random.Generator]:
        if self.train:
            i = index % len(self.items)
            return i, np.random.default_rng([self.seed, self.epoch, index])
        i, k = self.index[index]
        return i, np.random.default_rng([self.seed, stable_seed(self.items[i].group), k])

    def _choose_mask(self, person: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        # The photo's own person mask most of the time; otherwise a moved silhouette or a shape.
        if person is not None and rng.random() < 0.7 and person.mean() >= MIN_FOREGROUND:
            return person
        if self.silhouettes and rng.random() < 0.4:
            return place_silhouette(self.silhouettes[rng.integers(len(self.silhouettes))], self.size, rng)
        return random_mask(self.size, rng)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i, rng = self._rng(index)
        item, person = self.items[i], self.person[i]
        layers = self._layers(i) + ([person] if person is not None else [])
        views = random_view(layers, self.size, rng) if self.train else [_resize(x, self.size) for x in layers]
        real = scene_jitter(views[0], rng) if self.train and item.composite is None else views[0]
        if item.mask is not None:   # iHarmony4: always its own mask
            mask = views[1]
        else:
            mask = self._choose_mask(views[1] if person is not None else None, rng)
        args = rng.uniform(-1, 1, len(FILTER_ORDER)).astype(np.float32)
        # "Do no harm": some composites are already harmonious (the real photo itself), and the
        # right answer for them is to change nothing.
        identity = self.train and rng.random() < self.identity_fraction
        if identity:
            args[:] = 0
        sample = {"real": _chw(real), "mask": _chw(mask.astype(np.float32)), "args": torch.from_numpy(args),
                  "identity": torch.tensor(float(identity))}
        shown = real
        if item.composite is not None and not self.train:
            shown = views[2]
            sample["composite"] = _chw(shown)
        if self.with_background:
            # The composite's background is the real one; only the masked region is filled.
            sample["background"] = _chw(complete_background(shown, mask))
        return sample


def training_set(args, world: int, **options) -> tuple[list[Item], HarmonizationDataset]:
    """The training split of ``args.data`` and the harmonization samples one epoch draws from it: as
    many as ``args.epoch_steps`` batches of every process take, with MediaPipe's person masks unless
    ``args.no_person_masks``. ``options`` go to :class:`HarmonizationDataset` (``identity_fraction``
    defaults to ``args.identity_fraction``)."""
    items = collect(args.data, "train")
    options.setdefault("identity_fraction", args.identity_fraction)
    dataset = HarmonizationDataset(items, args.size, train=True, length=args.epoch_steps * args.batch_size * world,
                                   seed=args.seed, person_masks=None if args.no_person_masks else PersonMasker(),
                                   **options)
    return items, dataset
