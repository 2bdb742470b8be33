"""The real-footage blend evaluation, on tiny sequences laid out like the DAVIS folder (never the shared data)."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from models import registry
from models.matting.base import Matte, Matting
from models.training.blend_data import compose
from models.training.boundary import boundary_band
from models.training.evaluate_blend_footage import evaluate_footage, main
from models.training.evaluate_footage import read_clip
from models.training.footage import pipeline_mattes, reference_layer, sequence_clips
from tests.conftest import write_image

SIZE = (160, 120)
FRAMES = 6


def scene() -> tuple[np.ndarray, np.ndarray]:
    """(frame, annotation): a warm, textured figure (head and body) standing still in a colourful striped room
    (a still one: how temporal smoothing follows a moving edge is not what these tests measure)."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    room = np.stack([(xx * 3) % 256, 120 + 100 * np.sin(yy / 5), 255 - (xx + yy) % 256], axis=-1)
    person = np.stack([200 + 20 * np.sin(xx / 3), 140 + 0 * xx, 110 + 20 * np.cos(yy / 4)], axis=-1)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (70, 85), (26, 40), 0, 0, 360, 1, -1)
    cv2.circle(mask, (70, 35), 16, 1, -1)
    rgb = np.where(mask[..., None] > 0, person, room).astype(np.uint8)
    return rgb, mask.astype(np.float32)


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """A real-footage folder with ``davis/walk`` (video.mp4 + masks/NNNNN.png) and a background image."""
    root = tmp_path_factory.mktemp("footage")
    sequence = root / "davis" / "walk"
    (sequence / "masks").mkdir(parents=True)
    writer = cv2.VideoWriter(str(sequence / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, SIZE)
    assert writer.isOpened()
    rgb, mask = scene()
    for i in range(FRAMES):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(sequence / "masks" / f"{i:05d}.png"), (mask * 255).astype(np.uint8))
    writer.release()
    w, h = SIZE
    gradient = np.linspace(0, 1, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 1), np.float32)
    write_image(root / "blue.png", (np.array([20, 60, 200]) * (0.5 + 0.5 * gradient)).astype(np.uint8))
    return root


class AnnotationMatting(Matting):
    """A matting model that answers with the annotation itself, grown by ``grow`` px (a halo), and counts calls."""

    def __init__(self, grow: int = 0) -> None:
        self.grow, self.frames = grow, []

    def matte(self, frame):
        self.frames.append(frame.index)
        mask = scene()[1]
        if self.grow:
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.grow + 1,) * 2))
        return Matte(mask)


def test_every_frame_is_matted_in_order_and_every_nth_is_handed_out(footage):
    matting = AnnotationMatting()
    handed = list(pipeline_mattes(sequence_clips(footage, ["walk"])[0], matting, every=4))
    assert matting.frames == list(range(FRAMES))
    assert [(frame.index, frame.timestamp) for frame, _, _ in handed] == [(0, 0.0), (4, pytest.approx(4 / 24))]
    assert all(np.array_equal(mask, scene()[1]) for _, _, mask in handed)


def test_a_missing_sequence_is_named(footage):
    with pytest.raises(FileNotFoundError, match="no sequence tennis"):
        sequence_clips(footage, ["walk", "tennis"])


def test_the_reference_layer_recovers_a_soft_edge_from_a_binary_annotation():
    h, w = 360, 640
    yy, xx = np.mgrid[0:h, 0:w]
    true_alpha = cv2.GaussianBlur((np.hypot(xx - 320, yy - 180) < 100).astype(np.float32), (0, 0), 1.0)
    person = np.zeros((h, w, 3), np.uint8)
    person[:] = (220, 160, 120)
    room = np.stack([(xx * 2) % 256, 100 + 0 * xx, 255 - yy % 256], axis=-1).astype(np.uint8)
    rgb = compose(person, true_alpha, room)
    mask = (true_alpha > 0.5).astype(np.float32)
    layer = reference_layer(rgb, mask)
    band = boundary_band(true_alpha)
    error = np.abs(layer.alpha - true_alpha)[band].mean()
    assert error < 0.4 * np.abs(mask - true_alpha)[band].mean()
    inside = true_alpha > 0.3  # the person's own colour, without the room's, where it shows
    assert np.abs(layer.rgb[inside].astype(int) - person[inside]).mean() < 12


def test_a_blend_given_the_true_matte_scores_higher_than_given_a_haloed_one(footage):
    blends = {"linear": registry.create("blend", "linear")}
    photos = [cv2.cvtColor(cv2.imread(str(footage / "blue.png")), cv2.COLOR_BGR2RGB)]
    sequences = sequence_clips(footage, ["walk"])
    true, haloed = (evaluate_footage(sequences, blends, photos, AnnotationMatting(grow), every=2)
                    for grow in (0, 5))
    assert true["overall"]["linear"]["count"] == 3 and true["sequences"]["walk"] == true["overall"]
    t, d = true["overall"]["linear"], haloed["overall"]["linear"]
    assert t["band_psnr"] > 20 and t["band_psnr"] > d["band_psnr"] + 5
    assert t["psnr"] > d["psnr"] and t["band_alpha_error"] < d["band_alpha_error"]


def test_the_command_scores_every_usable_blend_with_the_real_matting_model(footage, tmp_path, capsys):
    out = tmp_path / "eval.json"
    report = main(["--footage", str(footage), "--sequences", "walk", "--every", "3", "--backgrounds",
                   str(footage / "blue.png"), "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["results"]) == set(registry.usable("blend"))
    for row in report["per_sequence"]["walk"].values():
        assert row["count"] == 2 and all(math.isfinite(v) for v in row.values())
    assert report["matting"] == "mediapipe" and report["matte_options"]["smoothing_s"] >= 0
    assert "walk" in capsys.readouterr().out


# --- training a blend on real matte errors ----------------------------------------------------------------
def test_shots_carry_the_pipeline_s_matte_and_the_reference_layer_at_the_working_size(footage):
    from models.training.footage import footage_shots

    clip = sequence_clips(footage, ["walk"])[0]
    shots = footage_shots([clip], AnnotationMatting(grow=4), every=2, long_side=80)
    assert len(shots) == 3                                          # frames 0, 2, 4
    shot = shots[0]
    assert shot.rgb.shape == (60, 80, 3) and shot.matte.shape == shot.excluded.shape == (60, 80)
    frame, mask = next(read_clip(clip))
    reference = reference_layer(frame.rgb, mask.astype(np.float32))
    small = cv2.resize(reference.alpha, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(shot.reference.alpha - small).max() < 1e-6       # the evaluation's reference, reduced
    # The matte is the model's (the annotation grown by 4 px) after the post-processing: wider than the person.
    assert (shot.matte > 0.5).sum() > (shot.reference.alpha > 0.5).sum()


def test_real_samples_put_the_reference_layer_over_a_new_background_and_keep_the_frame_as_source(footage):
    from models.training.blend_data import BlendTriplets
    from models.training.footage import footage_shots

    shots = footage_shots(sequence_clips(footage, ["walk"]), AnnotationMatting(grow=4), every=3, long_side=80)
    w, h = 80, 60
    photo = np.full((h, w, 3), (20, 200, 40), np.uint8)
    data = BlendTriplets([], [photo], train=False, length=4, shots=shots, shot_share=1.0)
    sample = {k: v.numpy() for k, v in data[0].items()}
    shot = next(s for s in shots if np.allclose(s.rgb.transpose(2, 0, 1) / 255, sample["source"], atol=1e-6))
    assert np.allclose(sample["alpha"][0], shot.matte) and np.allclose(sample["true_alpha"][0], shot.reference.alpha)
    target = compose(shot.reference.rgb, shot.reference.alpha, photo)
    assert np.allclose(sample["target"], target.transpose(2, 0, 1) / 255, atol=1e-6)
    # None of them without shots: the synthetic samples stay exactly what they were.
    plain = BlendTriplets([], [photo], train=False, length=4)
    with_none = BlendTriplets([], [photo], train=False, length=4, shots=shots, shot_share=0.0)
    assert all(np.array_equal(plain[0][k], with_none[0][k]) for k in plain[0])


def test_training_on_footage_refuses_the_sequences_kept_for_evaluation(footage, tmp_path, capsys):
    from models.training.train_blend import main as train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(["--data", str(footage), "--out", str(tmp_path / "w.safetensors"), "--footage", str(footage),
                    "--footage-sequences", "walk,tennis"])
    assert exit_info.value.code == 2 and "tennis are kept for evaluation" in capsys.readouterr().err


def test_a_short_training_run_on_footage_records_its_shots(footage, tmp_path):
    import safetensors

    from models.training.train_blend import main as train_main

    out = tmp_path / "w.safetensors"
    train_main(["--data", str(footage), "--out", str(out), "--checkpoint", str(tmp_path / "state.ckpt"),
                "--footage", str(footage), "--footage-sequences", "walk", "--footage-every", "3",
                "--widths", "4", "8", "8", "--crop", "32", "--batch-size", "2", "--epoch-steps", "1", "--steps", "1",
                "--no-people"])
    record = json.loads(safetensors.safe_open(str(out), "pt").metadata()["training"])
    assert record["footage"] == {"sequences": ["walk"], "every": 3, "shots": 2, "share": 0.5}
