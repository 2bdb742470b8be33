"""The training corpus: the committed split, curation of an unpacked package, dedupe, and the
corpus.json → ``collect("corpus:DIR")`` round trip. Nothing here downloads anything."""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.training import corpus
from models.training.corpus import (
    SOURCES,
    SPLITS,
    CorpusError,
    Photo,
    Report,
    Source,
    curate,
    curated_scenes,
    dedupe,
    load_split,
    photo_problem,
)
from models.training.data import collect


def _split_problems(table: dict[str, str], scenes: dict[str, str]) -> list[str]:
    """Everything wrong with a split table for the curated photos (empty when it is sound)."""
    problems = [f"{k}: unknown split {v!r}" for k, v in table.items() if v not in SPLITS]
    problems += [f"{k}: curated but not in the split file" for k in scenes if k not in table]
    problems += [f"{k}: in the split file but not curated" for k in table if k not in scenes]
    by_scene = defaultdict(set)
    for key, scene in scenes.items():
        if key in table:
            by_scene[scene].add(table[key])
    problems += [f"scene {s} straddles {sorted(v)}" for s, v in by_scene.items() if len(v) > 1]
    share = Counter(next(iter(v)) for v in by_scene.values() if len(v) == 1)
    n = sum(share.values())
    for split, (lo, hi) in {"train": (0.6, 0.8), "val": (0.1, 0.2), "test": (0.1, 0.2)}.items():
        if n and not lo <= share[split] / n <= hi:
            problems.append(f"{split} has {share[split]}/{n} scenes, outside {lo:.0%}–{hi:.0%}")
    return problems


def test_committed_split_is_sound():
    table, scenes = load_split(), curated_scenes()
    assert _split_problems(table, scenes) == []
    # The people photos placed by hand (see corpus_split.json and DATA.md).
    assert table["matplotlib/grace_hopper"] == "test"       # the app's sample clip is made from it
    assert table["scikit-image/astronaut"] == "train"
    assert table["scikit-image/camera"] == "val"
    assert {table[k] for k in scenes if scenes[k] == "kphotoalbum/grand_canyon"} == {"train"}
    # A stereo pair is one scene: only its left view is curated.
    assert "scikit-image/motorcycle" in table and not any("motorcycle_right" in k for k in table)


def test_split_check_catches_broken_tables():
    table, scenes = dict(load_split()), curated_scenes()
    moved = dict(table, **{"kphotoalbum/grand_canyon_2": "test"})       # one image of a 3-image scene
    assert any("straddles" in p for p in _split_problems(moved, scenes))
    assert any("not in the split file" in p for p in _split_problems(
        {k: v for k, v in table.items() if k != "mate-backgrounds/Aqua"}, scenes))
    assert any("unknown split" in p for p in _split_problems(dict(table, **{"mate-backgrounds/Aqua": "dev"}), scenes))
    all_train = {k: "train" for k in table}
    assert any("outside" in p for p in _split_problems(all_train, scenes))


def test_split_file_loader_refuses_unknown_splits(tmp_path):
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"splits": {"a/b": "validation"}}))
    with pytest.raises(CorpusError, match="unknown split"):
        load_split(bad)


def test_every_curated_photo_has_a_licence_and_a_unique_key():
    keys = [f"{s.name}/{p.key_name}" for s in SOURCES for p in s.photos]
    assert len(keys) == len(set(keys))
    assert all(p.licence for s in SOURCES for p in s.photos)
    assert {s.kind for s in SOURCES} == {"deb", "pypi"}


# --- Curation of an unpacked package --------------------------------------------------------

def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.shape[2] == 3
                else cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA))
    return path


def _fake_package(root: Path, astronaut: np.ndarray) -> Source:
    """An unpacked wallpaper package: a big photo, one picture at two sizes, a vector graphic,
    a cut-out and an entry whose file is missing."""
    base = root / "usr/share/backgrounds"
    _write(base / "big.png", cv2.resize(astronaut, (2000, 2000), interpolation=cv2.INTER_CUBIC))
    coffee = astronaut[::-1, ::-1].copy()
    _write(base / "Sizes/images/1024x768.jpg", cv2.resize(coffee, (1024, 768)))
    _write(base / "Sizes/images/2048x1536.jpg", cv2.resize(coffee, (2048, 1536)))
    flat = np.zeros((600, 800, 3), np.uint8)
    flat[:, :400] = (30, 90, 200)
    cv2.circle(flat, (500, 300), 120, (250, 200, 0), -1)
    _write(base / "vector.png", flat)
    cutout = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    cutout[:, :200, 3] = 0
    _write(base / "cutout.png", cutout)
    return Source("fake-backgrounds", "deb", "usr/share/backgrounds", (
        Photo("big.png", "CC0-1.0", "NASA"),
        Photo("Sizes/images/*.jpg", "CC-BY-4.0", "someone", name="Sizes"),
        Photo("vector.png", "GPL-2+"),
        Photo("cutout.png", "GPL-2+"),
        Photo("gone.jpg", "GPL-2+"),
    ))


def test_curate_copies_checked_photos_from_an_unpacked_package(tmp_path, astronaut):
    source = _fake_package(tmp_path / "unpacked", astronaut)
    report = Report()
    records = curate(source, tmp_path / "unpacked", "1.0-1", tmp_path / "out", report)

    assert [r.key for r in records] == ["fake-backgrounds/big", "fake-backgrounds/Sizes"]
    big, sizes = records
    image = cv2.imread(str(tmp_path / "out" / big.path))
    assert image.shape[:2] == (1600, 1600) and (big.width, big.height) == (1600, 1600)   # long side ≤ 1600
    assert big.path == "fake-backgrounds/big.jpg" and big.licence == "CC0-1.0" and big.version == "1.0-1"
    assert sizes.source_file.endswith("2048x1536.jpg") and (sizes.width, sizes.height) == (1600, 1200)
    assert sizes.scene == "fake-backgrounds/Sizes"
    reasons = "\n".join(report.rejected)
    assert "fake-backgrounds/vector: looks like a graphic" in reasons
    assert "fake-backgrounds/cutout" in reasons and "transparent" in reasons
    assert "fake-backgrounds/gone: gone.jpg not found" in reasons
    assert sorted(p.name for p in (tmp_path / "out/fake-backgrounds").iterdir()) == ["Sizes.jpg", "big.jpg"]


def test_photo_check_tells_photos_from_graphics(astronaut):
    assert photo_problem(astronaut) is None
    assert photo_problem(cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)) is None
    logo = np.full((512, 512, 3), (20, 60, 160), np.uint8)
    cv2.putText(logo, "MATE", (40, 300), cv2.FONT_HERSHEY_SIMPLEX, 5, (240, 240, 240), 12, cv2.LINE_AA)
    assert "distinct colours" in photo_problem(logo)
    banner = logo.copy()   # a flat graphic with a colourful band: enough colours, but mostly flat
    y, x = np.mgrid[0:512, 0:100]
    banner[:, 412:] = np.dstack([x * 2.5, y / 2, 255 - y / 2]).astype(np.uint8)
    assert "flat colour" in photo_problem(banner)


def test_dedupe_keeps_the_largest_of_two_sizes_of_one_picture(tmp_path, astronaut):
    base = tmp_path / "pkg"
    _write(base / "large.png", astronaut)
    _write(base / "small.jpg", cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA))
    other = cv2.GaussianBlur(astronaut[:, ::-1], (0, 0), 1).copy()
    other[:256] = astronaut[256:, ::-1]
    _write(base / "other.png", other)
    source = Source("pkg", "pypi", ".", (Photo("small.jpg", "CC0-1.0"), Photo("large.png", "CC0-1.0"),
                                         Photo("other.png", "CC0-1.0")))
    records = curate(source, base, "1", tmp_path / "out", Report())
    kept, dropped = dedupe(records)
    assert [r.key for r in kept] == ["pkg/large", "pkg/other"]
    assert [(d.key, twin.key) for d, twin in dropped] == [("pkg/small", "pkg/large")]


# --- Build and read back ---------------------------------------------------------------------

def _split_file(tmp_path: Path, table: dict[str, str]) -> Path:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"splits": table}))
    return path


SKIMAGE = Source("scikit-image", "pypi", "skimage/data", (
    Photo("astronaut.png", "public-domain"), Photo("coffee.png", "CC0-1.0"),
    Photo("chelsea.png", "CC0-1.0"), Photo("rocket.jpg", "public-domain"),
    Photo("motorcycle_left.png", "BSD-3-Clause", name="motorcycle", scene="motorcycle"),
    Photo("motorcycle_right.png", "BSD-3-Clause", name="motorcycle_right", scene="motorcycle"),
))


def test_build_from_installed_samples_round_trips_through_collect(tmp_path, capsys):
    pytest.importorskip("skimage")
    split = _split_file(tmp_path, {"scikit-image/astronaut": "train", "scikit-image/coffee": "val",
                                   "scikit-image/chelsea": "test", "scikit-image/motorcycle": "test"})
    out = tmp_path / "corpus"
    index = corpus.build(out, tmp_path / "packages", sources=(SKIMAGE,), split_file=split)

    by_key = {e["key"]: e for e in index["images"]}
    # The stereo pair's right view is the same picture: dedupe keeps one (equal sizes: the first key).
    assert [k for k in by_key if "motorcycle" in k] == ["scikit-image/motorcycle"]
    assert "scikit-image/motorcycle_right is scikit-image/motorcycle again" in index["duplicates"][0]
    assert by_key["scikit-image/rocket"]["split"] == "train"                 # not in the split file
    assert "scikit-image/rocket → train" in index["unsplit"]
    assert all((out / e["path"]).is_file() for e in index["images"])
    assert json.loads((out / "corpus.json").read_text()) == index
    assert not list(tmp_path.glob(".corpus.tmp-*"))                           # nothing half-built left

    val = collect([f"corpus:{out}"], "val")
    assert [(it.real.name, it.group) for it in val] == [("coffee.jpg", "scikit-image/coffee")]
    test = collect([f"corpus:{out}"], "test")
    assert {it.real.name for it in test} == {"chelsea.jpg", "motorcycle.jpg"}
    train = collect([f"corpus:{out}"], "train")
    assert {it.group for it in train} == {"scikit-image/astronaut", "scikit-image/rocket"}
    assert not {it.real for it in train} & {it.real for it in val + test}

    # A second run with the same inputs does nothing new.
    stamp = (out / "corpus.json").stat().st_mtime_ns
    capsys.readouterr()
    corpus.build(out, tmp_path / "packages", sources=(SKIMAGE,), split_file=split)
    assert "up to date" in capsys.readouterr().out
    assert (out / "corpus.json").stat().st_mtime_ns == stamp


def test_collect_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m models.training.corpus build"):
        collect([f"corpus:{tmp_path}"], "train")
    with pytest.raises(ValueError, match="only the corpus"):
        collect(["registry"], "val")


def test_build_fails_in_one_sentence_when_nothing_is_gathered(tmp_path, monkeypatch):
    def unavailable(source, cache, scratch, report):
        report.skipped.append(f"{source.name} skipped: it is not installed and `pip download` failed (offline)")

    monkeypatch.setattr(corpus, "pypi_root", unavailable)
    split = _split_file(tmp_path, {})
    with pytest.raises(CorpusError, match="no image could be gathered: scikit-image skipped: it is not installed"):
        corpus.build(tmp_path / "corpus", tmp_path / "packages", sources=(SKIMAGE,), split_file=split)
    assert not (tmp_path / "corpus").exists()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_build_reads_a_cached_deb_without_downloading(tmp_path, monkeypatch, astronaut):
    """The Debian path offline: a .deb already in the packages cache is unpacked and curated."""
    tree = tmp_path / "tree"
    source = _fake_package(tree, astronaut)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text("Package: fake-backgrounds\nVersion: 2:1.0-1\nArchitecture: all\n"
                                         "Maintainer: nobody <nobody@example.org>\nDescription: test\n")
    cache = tmp_path / "packages"
    cache.mkdir()
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(tree), str(cache / "fake-backgrounds_2%3a1.0-1_all.deb")],
                   check=True, capture_output=True)
    monkeypatch.setattr(corpus, "deb_candidate", lambda package: ("2:1.0-1", "all"))
    monkeypatch.setattr(corpus.shutil, "which", lambda name: f"/usr/bin/{name}")

    def no_download(cmd, cwd=None):
        assert cmd[:2] != ["apt-get", "download"], "the cached .deb must be used"
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)

    monkeypatch.setattr(corpus, "_run", no_download)
    split = _split_file(tmp_path, {"fake-backgrounds/big": "test", "fake-backgrounds/Sizes": "train"})
    index = corpus.build(tmp_path / "corpus", cache, sources=(source,), split_file=split)
    assert index["sources"]["fake-backgrounds"] == {"kind": "deb", "version": "2:1.0-1", "images": 2}
    assert {e["key"]: e["split"] for e in index["images"]} == {"fake-backgrounds/Sizes": "train",
                                                                "fake-backgrounds/big": "test"}
    assert len(index["rejected"]) == 3
