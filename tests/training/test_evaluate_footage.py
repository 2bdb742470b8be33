"""The real-footage evaluation: its measures against independent formulas, and one run end to end on a
small clip written here (tests never read the evaluation data)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from models.training import evaluate_footage as ef


def disc(h: int, w: int, centre: tuple[int, int], r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - centre[1]) ** 2 + (xx - centre[0]) ** 2 <= r * r


def test_iou_counts_pixels():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :6] = True
    b[:, 4:] = True
    assert ef.iou(a, b) == pytest.approx(20 / 100)
    assert ef.iou(a, a) == 1.0


def test_boundary_f_is_one_for_the_same_outline_and_falls_with_a_shift():
    truth = disc(200, 200, (100, 100), 50)
    assert ef.boundary_f(truth, truth) == 1.0
    near = disc(200, 200, (101, 100), 50)    # within the tolerance (0.8 % of 283 px ≈ 2.3 px)
    far = disc(200, 200, (112, 100), 50)
    assert ef.boundary_f(near, truth) > 0.95
    assert ef.boundary_f(far, truth) < 0.6


def test_interior_lost_and_background_kept():
    truth = disc(200, 200, (100, 100), 60)
    pred = truth.copy()
    pred[90:110, 90:110] = False              # a hole in the middle of the person
    pred[5:15, 5:15] = True                   # background kept far away
    m = ef.margin_px(truth)
    inside = cv2.erode(truth.astype(np.uint8), ef._disk(m)).astype(bool)
    regions = ef.Truth.of(truth)
    assert ef.interior_lost(pred, regions.inside) == pytest.approx(400 / inside.sum())
    outside = ~cv2.dilate(truth.astype(np.uint8), ef._disk(m)).astype(bool)
    assert ef.background_kept(pred, regions.beyond) == pytest.approx(100 / outside.sum())


def test_interior_sure_background_counts_only_confident_background_inside_the_eroded_mask():
    truth = disc(200, 200, (100, 100), 60)
    raw = np.full((200, 200), 0.95, np.float32)
    raw[90:110, 90:100] = 0.05                # sure background inside the person: counted
    raw[90:110, 100:110] = 0.3                # unsure: not counted
    raw[~truth] = 0.0                         # beyond the person: never counted
    m = ef.margin_px(truth)
    inside = cv2.erode(truth.astype(np.uint8), ef._disk(m)).astype(bool)
    assert ef.interior_sure_background(raw, ef.Truth.of(truth).inside) == pytest.approx(200 / inside.sum())
    assert ef.interior_sure_background(raw, ef.Truth.of(np.zeros_like(truth)).inside) is None


def test_overrides_count_only_confident_pixels_turned_over():
    raw = np.array([[0.95, 0.95, 0.05, 0.05, 0.5, 0.5]], np.float32)
    out = np.array([[0.2, 0.95, 0.7, 0.05, 0.0, 1.0]], np.float32)
    assert ef.overrides(raw, out) == pytest.approx(2 / 6)


def test_face_detail_falls_with_blur_and_ignores_contrast():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    face = np.ones((64, 64), bool)
    sharp = ef.face_detail(rgb, face)
    assert ef.face_detail(cv2.GaussianBlur(rgb, (5, 5), 0), face) < 0.5 * sharp
    flatter = (rgb.astype(np.float32) * 0.5 + 64).astype(np.uint8)
    assert ef.face_detail(flatter, face) == pytest.approx(sharp, rel=0.05)


def test_configurations_switch_each_step_off_once():
    configs = ef.configurations()
    default = configs["default"]
    for step in ef.STEPS:
        name = f"default without {step.removesuffix('_s')}" if getattr(default, step) else f"default with {step}"
        other = configs[name]
        assert bool(getattr(other, step)) != bool(getattr(default, step))
        assert {k for k in vars(default) if getattr(other, k) != getattr(default, k)} == {step}


@pytest.mark.slow
def test_a_clip_with_masks_runs_end_to_end(tmp_path, astronaut):
    """A small clip of a real portrait (the astronaut, moving), with MediaPipe's own answer thresholded as
    its masks: every configuration is measured and the raw model scores IoU ≈ 1 against itself."""
    from models import registry
    from models.frame import Frame

    folder = tmp_path / "clips" / "astro"
    (folder / "masks").mkdir(parents=True)
    writer = cv2.VideoWriter(str(folder / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    matting = registry.create("matting", "mediapipe")
    try:
        for i in range(6):
            rgb = np.roll(cv2.resize(astronaut, (256, 256)), 2 * i, axis=1)
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        writer.release()
        capture = cv2.VideoCapture(str(folder / "video.mp4"))
        for i in range(6):
            ok, bgr = capture.read()
            raw = matting.matte(Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), i, i / 10)).alpha
            cv2.imwrite(str(folder / "masks" / f"{i:05d}.png"), ((raw > 0.5) * 255).astype(np.uint8))
        capture.release()
    finally:
        matting.close()
    out = tmp_path / "report"
    cv2.imwrite(str(tmp_path / "bg.png"), np.full((64, 64, 3), (40, 90, 160), np.uint8))
    report = ef.main(["--data", str(tmp_path / "clips"), "--out", str(out), "--blends", "linear,defringe",
                      "--harmonizers", "none", "--background", str(tmp_path / "bg.png"), "--matting", "mediapipe"])
    rows = report["clips"]["astro"]["configs"]
    assert set(rows) == set(ef.configurations())
    assert rows["raw"]["iou"] > 0.999 and rows["raw"]["overrides"] == 0.0
    assert 0.5 < rows["default"]["iou"] <= 1.0
    assert json.loads((out / "report.json").read_text())["clips"]["astro"]["worst"]
    assert cv2.imread(str(out / "worst-astro.png")) is not None
    assert "| default |" in (out / "report.md").read_text()
    # The masks are the raw model's own answer: it is never sure of background inside them.
    assert report["clips"]["astro"]["model"]["interior_sure_background"] == 0.0
    assert report["model"]["interior_sure_background"] == 0.0
    assert "sure of background (α ≤ 0.1) on 0.00% of the interior" in (out / "report.md").read_text()
    # The face is guarded (α = 1 but for its outline's 2-pixel ramp), so linear blending and defringe keep its
    # pixels: detail and grey as the camera's.
    looks = report["clips"]["astro"]["faces"]
    for pair in ("linear + none", "defringe + none"):
        assert looks[pair]["detail"] == pytest.approx(1.0, abs=1e-3)
        assert looks[pair]["grey"] == pytest.approx(1.0, abs=1e-3)


def test_a_folder_without_clips_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="pass --data"):
        ef.evaluate(tmp_path, None)


def test_an_unknown_clip_name_lists_the_clips(tmp_path):
    """A misspelt ``--clips`` name (or one without its folder, ``hockey`` for ``davis/hockey``) stops the
    run before any work, naming the clips there are, rather than silently evaluating fewer."""
    (tmp_path / "davis" / "hockey").mkdir(parents=True)
    (tmp_path / "davis" / "hockey" / "video.mp4").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"no clip named hockey .*choose from davis/hockey"):
        ef.evaluate(tmp_path, None, ["hockey"])


def test_matting_takes_only_a_usable_registered_model(tmp_path, capsys):
    """``--matting`` offers the registry's usable models; anything else is a usage error (exit 2) naming them."""
    with pytest.raises(SystemExit) as stop:
        ef.main(["--data", str(tmp_path), "--matting", "rvm"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'rvm'" in err and "mediapipe-body" in err


@pytest.mark.parametrize("args, text", [
    (["--frames", "0"], "argument --frames: 0 is out of range; use a whole number from 1 to"),
    (["--out", "{tmp}/taken/report"], "--out {tmp}/taken/report: cannot create the folder"),
])
def test_bad_options_stop_before_any_clip_is_read(tmp_path, capsys, args, text):
    """A count below one would evaluate nothing and report success; an output folder that cannot be made
    would fail only after the whole evaluation. Both are usage errors (exit 2) before any work."""
    (tmp_path / "taken").write_text("a file where the folder's parent should be")
    with pytest.raises(SystemExit) as stop:
        ef.main(["--data", str(tmp_path), *[a.format(tmp=tmp_path) for a in args]])
    assert stop.value.code == 2
    assert text.format(tmp=tmp_path) in capsys.readouterr().err
