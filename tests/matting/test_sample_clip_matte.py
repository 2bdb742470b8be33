"""The issue's acceptance check on the real sample clip with the real MediaPipe model: the cap is
opaque, the flag pole beside the head is not glued to it, and no blend paints it back."""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from models import registry
from models.frame import Frame
from models.matting.base import Matte
from models.matting.postprocess import MatteOptions, MattePostprocess
from models.stream import StreamState
from models.training.evaluate_matte import REGIONS


@pytest.fixture(scope="module")
def frame0(sample_clip) -> np.ndarray:
    capture = cv2.VideoCapture(str(sample_clip))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def share(alpha: np.ndarray, box, test) -> float:
    x0, y0, x1, y1 = box
    return float(test(alpha[y0:y1, x0:x1]).mean())


@pytest.fixture(scope="module")
def raw0(frame0) -> np.ndarray:
    matting = registry.create("matting", "mediapipe")
    try:
        return matting.matte(Frame(frame0, 0, 0.0)).alpha
    finally:
        matting.close()


@pytest.mark.slow
def test_cap_is_opaque_and_the_pole_is_not_glued_on(frame0, raw0):
    regions = json.loads(REGIONS.read_text())
    raw = raw0
    after = MattePostprocess()(Frame(frame0, 0, 0.0), Matte(raw)).alpha
    before = MattePostprocess(MatteOptions(solidify=False, colour_guide=False))(Frame(frame0, 0, 0.0), Matte(raw)).alpha
    cap, pole, flag = regions["person"]["cap"], regions["background"]["pole"], regions["background"]["flag"]
    assert share(before, cap, lambda a: a >= 0.9) < 0.8  # the defect is there to begin with
    assert share(after, cap, lambda a: a >= 0.9) >= 0.95
    assert share(before, pole, lambda a: a > 0.1) > 0.9
    assert share(after, pole, lambda a: a > 0.1) < 0.02  # measured: 0.000
    assert share(after, flag, lambda a: a > 0.1) < 0.05  # measured: 0.000


@pytest.mark.slow
@pytest.mark.skipif("learned" not in registry.usable("blend"), reason="no shipped blending weights")
def test_the_learned_blend_does_not_paint_the_pole_back(frame0, raw0):
    """The network, which sees the frame, gave the pole beside the ear α 0.2–0.6 again where the
    matte had taken it away; the matte's exclusion of background bars keeps it out."""
    pole = json.loads(REGIONS.read_text())["background"]["pole"]
    frame = Frame(frame0, 0, 0.0)
    matte = MattePostprocess()(frame, Matte(raw0))
    background = np.full_like(frame0, (40, 120, 40))
    blend = registry.create("blend", "learned")
    used = blend.blend(frame, matte, background, StreamState(live=False)).alpha
    assert share(used, pole, lambda a: a > 0.1) < 0.02
    without = blend.blend(frame, replace(matte, excluded=None), background, StreamState(live=False)).alpha
    assert share(without, pole, lambda a: a > 0.1) > share(used, pole, lambda a: a > 0.1)


@pytest.mark.slow
def test_the_cap_holds_while_mediapipe_doubts_it(sample_clip):
    """From frame 87 to 107 MediaPipe gives the top of the cap 0.2–0.5 instead of > 0.5; the decision
    of the frame before holds it (measured: 0.18 of the box at α ≥ 0.9 at worst, 0.36 in the other
    frames; without the hold 0.00)."""
    capture = cv2.VideoCapture(str(sample_clip))
    matting = registry.create("matting", "mediapipe")
    post, shares = MattePostprocess(), []
    try:
        for index in range(108):
            ok, bgr = capture.read()
            assert ok
            frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / 30)
            alpha = post(frame, matting.matte(frame)).alpha
            shares.append(float((alpha[0:120, 480:800] >= 0.9).mean()))
    finally:
        matting.close()
        capture.release()
    assert min(shares[87:108]) > 0.12 and np.mean(shares[:87]) > 0.3
