"""The shipped AdaIN weights: pulling a pushed foreground back, doing no harm to a harmonious one.

These score the trained network itself, so they fail when a retraining makes it worse.
"""
from __future__ import annotations

import numpy as np
import pytest

from models import registry
from models.harmonizers.still import harmonize_still
from tests.harmonizers.quality import fmse, push_ratios, shipped_entry


@pytest.fixture(scope="module")
def adain():
    h = registry.create("harmonizer", "adain")
    yield h
    h.close()


def test_a_pushed_foreground_is_pulled_back_towards_the_photo(adain, portraits):
    # Measured with the shipped weights: the foreground error falls to 0.28–0.64 of the composite's on
    # the astronaut and 0.41–0.49 on Grace Hopper, except a cooler foreground, which the network undoes
    # least (0.82 and 0.93); mean 0.51.
    ratios = push_ratios(adain, portraits)
    assert max(ratios) < 1, ratios  # every push is undone at least partly
    assert np.mean(ratios) < 0.6, ratios


def test_a_harmonious_composite_is_left_nearly_alone(adain, portraits):
    # An untouched photo is harmonious by definition. Identity fMSE with the shipped weights: 120
    # (astronaut) and 111 (Grace Hopper); the held-out mean, 98.7, is in weights/MANIFEST.json.
    for photo, mask, background in portraits:
        out = harmonize_still(adain, photo, mask, background)
        assert fmse(out, photo, mask) < 200


def test_the_shipped_weights_match_their_manifest_entry_and_its_figures_meet_the_target():
    from models.harmonizers.adain.network import AdainNet
    from models.harmonizers.adain.stage import ARCHITECTURE

    path, entry = shipped_entry(ARCHITECTURE)
    assert entry["architecture"]["storage"] == ["F16"]
    assert AdainNet.from_checkpoint(path).options() == entry["architecture"]["options"]
