"""The shipped Harmonizer weights: correcting directions, doing no harm, keeping the sample's brightness.

These score the trained network itself, so they fail when a retraining makes it worse.
"""
from __future__ import annotations

import numpy as np
import pytest

from app.assemble import StageChoice
from app.backgrounds import SHIPPED_DIR
from app.stream import build_pipeline
from app.sources import open_source
from models import registry
from models.harmonizers.harmonizer.filters import FILTER_ORDER
from models.harmonizers.realtime import SmallInputs
from models.harmonizers.still import harmonize_still
from tests.harmonizers.quality import perturbed



@pytest.fixture(scope="module")
def harmonizer():
    return registry.create("harmonizer", "harmonizer")


def arguments(harmonizer, composite, mask) -> np.ndarray:
    return harmonizer.predict(SmallInputs(composite, mask, None), {})


@pytest.mark.parametrize("name", ["temperature", "brightness", "contrast", "saturation"])
def test_a_foreground_pushed_one_way_gets_the_correcting_argument(harmonizer, portraits, name):
    k = FILTER_ORDER.index(name)
    for photo, mask, _ in portraits:
        base = arguments(harmonizer, photo, mask)[k]
        up = arguments(harmonizer, perturbed(photo, mask, name, +0.5), mask)[k]
        down = arguments(harmonizer, perturbed(photo, mask, name, -0.4), mask)[k]
        # more of it → the argument goes down; less of it → up (relative to the untouched photo)
        assert up < base < down, (name, up, base, down)


def test_a_harmonious_composite_is_left_nearly_alone(harmonizer, portraits):
    # An untouched photo of a person is harmonious by definition. Its identity fMSE (the shared
    # evaluation's measure; the held-out mean, 112.7, is in weights/MANIFEST.json) per portrait:
    # 86 and 306 with these weights, 336 and 650 with the previous ones. Grace Hopper's dark
    # uniform is the hard case (it is in the held-out split).
    limits = (120, 350)  # astronaut, grace_hopper
    for (photo, mask, _), limit in zip(portraits, limits):
        out = harmonize_still(harmonizer, photo, mask)
        fg = mask > 0.5
        assert ((out[fg].astype(float) - photo[fg]) ** 2).mean() < limit


def sample_brightness_change(background: str, frames: int = 20) -> float:
    """Relative change of the person's mean brightness on the sample clip over ``background``."""
    source = open_source("sample", size=(640, 360))
    pipeline = build_pipeline(StageChoice(), background, [], frame_locked=True)
    pipeline.live = False
    try:
        for _ in range(frames):  # a second of smoothing settles
            result = pipeline.process(source.read())
    finally:
        pipeline.close()
        source.close()
    inside = result.alpha > 0.5
    before = result.composite.image[inside].mean()
    return float(result.output[inside].mean() / before - 1)


@pytest.mark.parametrize("background", sorted(p.name for p in SHIPPED_DIR.glob("*.jpg")))
def test_the_sample_portrait_keeps_its_brightness_over_the_shipped_backgrounds(background):
    assert abs(sample_brightness_change(str(SHIPPED_DIR / background))) < 0.10
