"""The shipped PHNet weights (small configuration): pulling a pushed foreground back, doing no harm to a
harmonious one, and predicting in real time on one CPU thread.

These score the trained network itself, so they fail when a retraining makes it worse.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
import torch

from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.harmonizer import filters as F
from models.harmonizers.realtime import shrink
from models.harmonizers.still import harmonize_still
from models.stream import StreamState


@pytest.fixture(scope="module")
def phnet():
    h = registry.create("harmonizer", "phnet")
    yield h
    h.close()


@pytest.fixture(scope="module")
def portraits(astronaut, grace_hopper):
    """(photo, MediaPipe person mask) at 256²; Grace Hopper is in the held-out split."""
    matting = registry.create("matting", "mediapipe")
    out = []
    for photo in (astronaut, grace_hopper):
        small = shrink(photo, 256)
        out.append((small, np.array(matting.matte(Frame(small, 0, 0.0)).alpha)))  # a writable copy
    matting.close()
    return out


def perturbed(photo: np.ndarray, mask: np.ndarray, name: str, x: float) -> np.ndarray:
    """The photo with one filter applied to the person only: an inharmonious composite."""
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None]
    out = F.apply_filter(name, image, x) * m + image * (1 - m)
    return (out[0].permute(1, 2, 0) * 255).round().byte().numpy()


def fmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    fg = mask > 0.5
    return float(((a[fg].astype(float) - b[fg]) ** 2).mean())


PUSHES = [("brightness", 0.5), ("brightness", -0.4), ("temperature", 0.6), ("temperature", -0.6),
          ("saturation", 0.6), ("contrast", 0.5)]


def test_a_pushed_foreground_is_pulled_back_towards_the_photo(phnet, portraits):
    # Measured with the shipped weights: the foreground error falls to 0.34–0.69 of the composite's, except a
    # darker foreground, which the network leaves as it is (1.07 astronaut, 1.00 Grace Hopper); mean 0.60.
    ratios = []
    for photo, mask in portraits:
        for name, x in PUSHES:
            composite = perturbed(photo, mask, name, x)
            before = fmse(composite, photo, mask)
            ratios.append(fmse(harmonize_still(phnet, composite, mask), photo, mask) / before)
    assert np.mean(ratios) < 0.7, ratios


def test_a_harmonious_composite_is_left_nearly_alone(phnet, portraits):
    # An untouched photo is harmonious by definition. Identity fMSE with the shipped weights: 148
    # (astronaut) and 150 (Grace Hopper); the held-out mean, 153.8, is in weights/MANIFEST.json.
    for photo, mask in portraits:
        assert fmse(harmonize_still(phnet, photo, mask), photo, mask) < 200


def test_one_prediction_fits_a_real_time_budget_on_one_thread(phnet, portraits):
    # The stage's input for a 16:9 frame: 128×72 (aspect kept). Measured on the 2-core machine, one thread:
    # 8.8 ms (128×72), 11.7 ms (128×128); at 256×144 it would be 26 ms.
    photo, mask = portraits[0]
    frame = Composite(np.ascontiguousarray(photo[56:200]), np.ascontiguousarray(mask[56:200]), None)
    inputs = phnet._small_inputs(frame, frame.image, StreamState(live=False))
    assert inputs.composite.shape == (72, 128, 3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        phnet.predict(inputs, {})
        times = []
        for _ in range(5):
            start = time.perf_counter()
            phnet.predict(inputs, {})
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.04  # loose: CI machines are slower and busier than the measurement's


def test_the_shipped_weights_match_their_manifest_entry_and_its_figures_meet_the_target():
    from models.harmonizers.phnet.network import SMALL, PHNet
    from models.harmonizers.phnet.stage import ARCHITECTURE
    from models.weights import WEIGHTS_DIR, default_weights

    path = default_weights(ARCHITECTURE)
    (entry,) = [e for e in json.loads((WEIGHTS_DIR / "MANIFEST.json").read_text())["weights"]
                if e["default"] and e["architecture"]["class"] == ARCHITECTURE]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size <= 5 * 2 ** 20 and entry["architecture"]["storage"] == ["F16", "I64"]
    assert PHNet.from_checkpoint(path).config == SMALL and entry["architecture"]["options"]["config"] == "small"
    results = entry["evaluation"]["results"]
    # Issue 11's bar: at least 20 % below the composite's fMSE, identity fMSE at most 250.
    assert results["model"]["fmse"] <= 0.8 * results["none"]["fmse"]
    assert results["model"]["identity_fmse"] <= 250
