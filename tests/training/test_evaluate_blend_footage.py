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
