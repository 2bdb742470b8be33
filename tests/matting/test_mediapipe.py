"""The default backend: the real MediaPipe selfie model on real photos of people."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.imaging import cover_fit
from models import registry
from models.frame import Frame
from models.matting.base import MattingModelError


@pytest.fixture(scope="module", params=["mediapipe", "mediapipe-landscape"])
def matting(request):
    m = registry.create("matting", request.param)
    yield m
    m.close()


# Where each person's head is after cover-fitting the photo to 640×480 (rows, columns as fractions).
HEAD = {"astronaut": (slice(0.1, 0.35), slice(0.3, 0.5)), "grace_hopper": (slice(0.25, 0.5), slice(0.4, 0.6))}


@pytest.mark.parametrize("photo", sorted(HEAD))
def test_person_is_found_on_real_photos(matting, photo, request):
    rgb = cover_fit(request.getfixturevalue(photo), (640, 480))
    alpha = matting.matte(Frame(rgb, 0, 0.0)).alpha
    assert alpha.shape == (480, 640) and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    h, w = alpha.shape
    rows, cols = HEAD[photo]
    head = alpha[int(rows.start * h):int(rows.stop * h), int(cols.start * w):int(cols.stop * w)]
    assert head.mean() > 0.85
    # soft, not binarised: the edge has intermediate values
    assert ((alpha > 0.05) & (alpha < 0.95)).mean() > 0.002


def test_background_of_grace_hopper_is_not_person(matting, grace_hopper):
    rgb = cover_fit(grace_hopper, (640, 480))
    alpha = matting.matte(Frame(rgb, 0, 0.0)).alpha
    assert alpha[:60, :60].mean() < 0.2 and alpha[:60, -60:].mean() < 0.2  # flag and wall


def test_alpha_matches_any_frame_size(matting, astronaut):
    for size in [(1280, 720), (320, 240)]:
        alpha = matting.matte(Frame(cover_fit(astronaut, size), 0, 0.0)).alpha
        assert alpha.shape == (size[1], size[0])


def test_the_coarse_matte_is_the_models_answer_before_it_is_enlarged(matting, astronaut):
    frame = Frame(cover_fit(astronaut, (1280, 720)), 0, 0.0)
    coarse = matting.coarse(frame).alpha
    assert coarse.shape == (360, 640)  # the 640-pixel copy the model is given
    full = matting.matte(frame).alpha
    assert np.array_equal(full, cv2.resize(coarse, (1280, 720), interpolation=cv2.INTER_LINEAR))


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(MattingModelError, match="not a MediaPipe segmentation model"):
        registry.create("matting", "mediapipe", model_path=bad)
    with pytest.raises(MattingModelError, match="does not exist"):
        registry.create("matting", "mediapipe", model_path=tmp_path / "missing.tflite")


def test_model_path_loads_a_given_tflite():
    from models.matting.mediapipe_selfie import bundled_model

    m = registry.create("matting", "mediapipe", model_path=bundled_model("landscape"))
    assert m.model_path.name == "selfie_segmentation_landscape.tflite"
    m.close()
