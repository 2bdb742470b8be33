"""``harmonicam harmonize``: still composites, files and folders, with every registered harmonizer."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.cli import main
from models import registry
from models.harmonizers.still import harmonize_still
from tests.conftest import write_image

USABLE = [name for name, ok, _ in registry.available("harmonizer") if ok]


def person_pair(astronaut, size=(128, 96)):
    """A composite whose person (left half) is too blue for its warm background, and its mask."""
    w, h = size
    photo = cv2.resize(astronaut, size)
    mask = np.zeros((h, w), np.uint8)
    mask[10:, 20:70] = 255
    background = np.empty_like(photo)
    background[...] = (210, 140, 80)
    person = photo.copy()
    person[..., 2] = np.clip(person[..., 2].astype(int) + 70, 0, 255)
    composite = np.where(mask[..., None] > 0, person, background).astype(np.uint8)
    return composite, mask, background


@pytest.mark.parametrize("name", USABLE)
def test_every_harmonizer_harmonizes_a_file(tmp_path, astronaut, name):
    composite, mask, background = person_pair(astronaut)
    c = write_image(tmp_path / "c.png", composite)
    m = tmp_path / "m.png"
    cv2.imwrite(str(m), mask)
    b = write_image(tmp_path / "b.png", background)
    out = tmp_path / "o.png"
    assert main(["harmonize", "--harmonizer", name, "--composite", str(c), "--mask", str(m),
                 "--background", str(b), "--out", str(out), "--runtime", "torch"]) == 0
    result = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    # the same code as the video pipeline: the still path of the registered harmonizer (on torch, as
    # registry.create makes it; ONNX Runtime's agreement is tests/export/test_onnx_runtime.py's)
    expected = harmonize_still(registry.create("harmonizer", name), composite, mask.astype(np.float32) / 255,
                               background)
    assert np.array_equal(result, expected)
    assert np.array_equal(result[mask == 0], composite[mask == 0])  # the background is never touched
    if name != "none":
        assert np.abs(result.astype(int) - composite).max() > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_folders_pair_by_name_and_write_pngs(tmp_path, astronaut, capsys):
    composite, mask, _ = person_pair(astronaut)
    for folder in ("c", "m"):
        (tmp_path / folder).mkdir()
    for stem in ("one", "two", "three"):
        write_image(tmp_path / "c" / f"{stem}.jpg", composite)
        cv2.imwrite(str(tmp_path / "m" / f"{stem}.png"), mask)
    assert main(["harmonize", "--harmonizer", "reinhard", "--composite", str(tmp_path / "c"),
                 "--mask", str(tmp_path / "m"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.png", "three.png", "two.png"]
    assert "3/3" in capsys.readouterr().err  # progress on folders


def test_missing_pairs_and_size_mismatches_are_one_sentence(tmp_path, astronaut, capsys):
    composite, mask, _ = person_pair(astronaut)
    (tmp_path / "c").mkdir()
    (tmp_path / "m").mkdir()
    write_image(tmp_path / "c" / "a.png", composite)
    write_image(tmp_path / "c" / "b.png", composite)
    cv2.imwrite(str(tmp_path / "m" / "a.png"), mask)
    args = ["harmonize", "--harmonizer", "none", "--composite", str(tmp_path / "c"), "--mask", str(tmp_path / "m"),
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no mask of the same name" in err and "b.png" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written before every pair is known

    cv2.imwrite(str(tmp_path / "m" / "b.png"), cv2.resize(mask, (64, 48)))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "same size" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "b.png").exists()


def test_bad_paths_are_usage_errors(tmp_path, astronaut, capsys):
    composite, mask, _ = person_pair(astronaut)
    c = write_image(tmp_path / "c.png", composite)
    assert main(["harmonize", "--harmonizer", "none", "--composite", str(c), "--mask", str(tmp_path / "nope.png"),
                 "--out", str(tmp_path / "o.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["harmonize", "--harmonizer", "nope", "--composite", str(c), "--mask", str(c),
                 "--out", str(tmp_path / "o.png")]) == 2


def test_an_output_folder_that_cannot_be_made_is_one_sentence(tmp_path, astronaut, capsys):
    composite, mask, _ = person_pair(astronaut)
    for folder in ("c", "m"):
        (tmp_path / folder).mkdir()
    for stem in ("one", "two"):
        write_image(tmp_path / "c" / f"{stem}.png", composite)
        cv2.imwrite(str(tmp_path / "m" / f"{stem}.png"), mask)
    (tmp_path / "taken").write_text("a file where the folder's parent should be")
    assert main(["harmonize", "--harmonizer", "none", "--composite", str(tmp_path / "c"), "--mask",
                 str(tmp_path / "m"), "--out", str(tmp_path / "taken" / "out")]) == 1
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and err.count("\n") == 1


def test_an_image_the_disk_refuses_is_one_sentence(tmp_path, astronaut, monkeypatch, capsys):
    import contextlib
    import errno

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield path

    monkeypatch.setattr("app.commands.harmonize.atomic_path", full)
    composite, mask, _ = person_pair(astronaut)
    c, m = write_image(tmp_path / "c.png", composite), tmp_path / "m.png"
    cv2.imwrite(str(m), mask)
    assert main(["harmonize", "--harmonizer", "none", "--composite", str(c), "--mask", str(m),
                 "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'o.png'} (No space left on device)" in err and err.count("\n") == 1
