"""The full-body backend: MediaPipe's selfie and pose segmentations joined, on real photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.imaging import cover_fit
from models import registry
from models.frame import Frame


@pytest.fixture(scope="module")
def body():
    m = registry.create("matting", "mediapipe-body")
    yield m
    m.close()


@pytest.fixture(scope="module")
def selfie():
    m = registry.create("matting", "mediapipe")
    yield m
    m.close()


def distant(photo: np.ndarray, person: np.ndarray, share: float, size=(1280, 720)) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` (square) shrunk to ``share`` of the frame's height, standing on the bottom edge of a grey
    frame — a person far from the camera — and ``person`` (bool, the photo's person) moved with it."""
    w, h = size
    side = round(share * h)
    frame = np.full((h, w, 3), 120, np.uint8)
    truth = np.zeros((h, w), bool)
    y0, x0 = h - side, (w - side) // 2
    frame[y0:, x0:x0 + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    truth[y0:, x0:x0 + side] = cv2.resize(person.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
    return frame, truth


@pytest.fixture(scope="module")
def portrait(selfie, astronaut) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut, square, and where the selfie model puts her when she fills the view."""
    photo = cover_fit(astronaut, (512, 512))
    return photo, selfie.matte(Frame(photo, 0, 0.0)).alpha > 0.5


def test_the_union_never_has_less_person_than_the_selfie_model(body, selfie, astronaut, grace_hopper):
    """α = max(selfie, pose): wherever the selfie model sees the person, so does the union."""
    for i, photo in enumerate((astronaut, grace_hopper)):
        frame = Frame(cover_fit(photo, (640, 480)), i, i / 30)
        assert np.all(body.matte(frame).alpha >= selfie.matte(frame).alpha)


def test_a_distant_person_is_found_more_completely(body, selfie, portrait):
    """The astronaut at 15 % of the frame's height: the pose model finds the body and segments its crop,
    where the selfie model sees a small figure in its 256-pixel view (measured: 90 % of her against 63 %)."""
    rgb, truth = distant(*portrait, 0.15)
    body.reset()
    for i in range(3):  # the pose model detects, then tracks
        found = body.matte(Frame(rgb, i, i / 30)).alpha > 0.5
    alone = selfie.matte(Frame(rgb, 0, 0.0)).alpha > 0.5
    assert found[truth].mean() > alone[truth].mean() + 0.15
    assert found[~truth].mean() < 0.01  # and hardly any of the grey around her


def test_reset_starts_the_pose_model_afresh(body, portrait):
    """After reset the answers are those of a new model: nothing tracked from the frames before."""
    photo, person = portrait
    rgb, _ = distant(photo, person, 0.5)
    other, _ = distant(photo[:, ::-1].copy(), person, 0.3)
    body.reset()
    first = body.matte(Frame(rgb, 0, 0.0)).alpha
    body.matte(Frame(other, 1, 1 / 30))
    body.reset()
    assert np.array_equal(body.matte(Frame(rgb, 0, 0.0)).alpha, first)


def test_it_is_a_registered_choice():
    assert "mediapipe-body" in registry.usable("matting")
