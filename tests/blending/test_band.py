"""The mixed band: α well below 1 within r of the outline, the same on the host and the device."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_cdt

from models.blending.band import BAND_SHARE, MIXED_BELOW, mixed_band, mixed_band_tensor
from models.ops.tensor_image import alpha_tensor
from tests.blending.interior import person_with_doubts


def noisy_person(w: int, h: int) -> np.ndarray:
    """:func:`person_with_doubts`'s matte at (w, h), with noise on its rim (α values near every threshold)."""
    alpha = person_with_doubts(w, h)[1]
    rim = (alpha > 0) & (alpha < 1)
    noise = np.random.default_rng(1).normal(0, 0.05, alpha.shape).astype(np.float32)
    return np.clip(alpha + noise * rim, 0, 1)


@pytest.mark.parametrize("band", [mixed_band, lambda a: mixed_band_tensor(alpha_tensor(a, "cpu"))[0, 0].numpy()],
                         ids=["host", "device"])
def test_the_band_is_alpha_well_below_one_near_the_outline(band):
    """At a working size (long side ≤ 320) the band is the formula itself, from chessboard distances."""
    alpha = noisy_person(320, 192)
    r = round(BAND_SHARE * 320)
    person = alpha >= 0.5
    # distance of each pixel to the nearest pixel on the other side of the outline
    across = np.where(person, distance_transform_cdt(person, "chessboard"),
                      distance_transform_cdt(~person, "chessboard"))
    want = (across <= r) & (alpha < MIXED_BELOW)
    assert want.any() and np.array_equal(band(alpha), want)


@pytest.mark.parametrize("size", [(1280, 720), (401, 239)])
def test_host_and_device_bands_agree_at_full_resolution(size):
    alpha = noisy_person(*size)
    host = mixed_band(alpha)
    assert np.array_equal(mixed_band_tensor(alpha_tensor(alpha, "cpu"))[0, 0].numpy(), host)
    assert not host[alpha >= MIXED_BELOW].any()
    # the half-width follows the frame: about BAND_SHARE of the long side on either side of the outline
    row = host[size[1] // 2]
    person = alpha[size[1] // 2] >= 0.5
    outline = np.flatnonzero(person)[-1]  # the disc's right edge
    r = BAND_SHARE * size[0]
    assert not row[outline - round(2 * r)] and row[outline + 1:outline + round(0.7 * r)].all()
    assert not row[outline + round(2 * r)]


def test_no_outline_no_band():
    for alpha in (np.zeros((90, 160), np.float32), np.ones((90, 160), np.float32), np.full((90, 160), 0.7, np.float32)):
        assert not mixed_band(alpha).any() and not mixed_band_tensor(alpha_tensor(alpha, "cpu")).any()
