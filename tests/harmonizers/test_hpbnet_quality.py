"""The shipped HPBNet weights: pulling a pushed foreground back, doing no harm to a harmonious one.

These score the trained network itself, so they fail when a retraining makes it worse.
"""
from __future__ import annotations

import numpy as np
import pytest

from models import registry
from models.harmonizers.still import harmonize_still
from tests.harmonizers.quality import fmse, push_ratios, shipped_entry


@pytest.fixture(scope="module")
def hpbnet():
    h = registry.create("harmonizer", "hpbnet")
    yield h
    h.close()


def test_a_pushed_foreground_is_pulled_back_towards_the_photo(hpbnet, portraits):
    # Measured with the shipped weights (after/before foreground error): a darker foreground 0.66 and
    # 0.58, a warmer one 0.48 and 0.52, more saturation 0.93 and 0.94 (astronaut, Grace Hopper); a
    # brighter, cooler or more contrasted one is left nearly as it is (0.99–1.00); mean 0.84. On the
    # held-out split the foreground error falls to 0.47 of the composite's (weights/MANIFEST.json).
    ratios = push_ratios(hpbnet, portraits)
    assert np.mean(ratios) < 0.9, ratios
    assert sum(r < 0.97 for r in ratios) >= 6, ratios  # half the pushes are clearly undone
    assert max(ratios) < 1.05, ratios  # and none is made worse


def test_a_harmonious_composite_is_left_nearly_alone(hpbnet, portraits):
    # An untouched photo is harmonious by definition. Identity fMSE with the shipped weights: below 0.05
    # on both (the fitted colour map is within 0.002 of the identity); the held-out mean, 150.1, is in
    # weights/MANIFEST.json.
    for photo, mask, background in portraits:
        out = harmonize_still(hpbnet, photo, mask, background)
        assert fmse(out, photo, mask) < 20


def test_the_shipped_weights_match_their_manifest_entry_and_its_figures_meet_the_target():
    from models.harmonizers.hpbnet.network import HpbNet
    from models.harmonizers.hpbnet.stage import ARCHITECTURE

    path, entry = shipped_entry(ARCHITECTURE)
    assert entry["architecture"]["storage"] == ["F16"]
    assert HpbNet.from_checkpoint(path).options() == entry["architecture"]["options"]
