"""Connected regions on the device (models.ops.components) against OpenCV's on the host."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.ops.components import label_regions, region_reduce, region_sums, touches_border


def serpentine(h: int, w: int) -> np.ndarray:
    """One region that runs along every other row and turns at alternate ends: the longest path a map holds."""
    mask = np.zeros((h, w), bool)
    mask[::2] = True
    mask[1::4, -1] = True
    mask[3::4, 0] = True
    return mask


def spiral(h: int, w: int) -> np.ndarray:
    """A spiral wall winding into the map's centre."""
    mask = np.zeros((h, w), bool)
    top, left, bottom, right = 0, 0, h - 1, w - 1
    while top + 2 <= bottom and left + 2 <= right:
        mask[top, left:right + 1] = mask[top:bottom + 1, right] = mask[bottom, left:right + 1] = True
        mask[top + 2:bottom + 1, left] = True
        mask[top + 2, left:right - 1] = True
        top, left, bottom, right = top + 4, left + 4, bottom - 4, right - 4
    return mask


def assert_same_regions(mask: np.ndarray, connectivity: int) -> None:
    labels = label_regions(torch.from_numpy(mask), connectivity).numpy()
    count, reference = cv2.connectedComponents(mask.astype(np.uint8), connectivity=connectivity)
    assert np.all(labels[~mask] == mask.size)
    # The same partition: each OpenCV region holds one label and each label one region.
    pairs = set(zip(reference[mask].tolist(), labels[mask].tolist()))
    assert len(pairs) == count - 1 == len(np.unique(labels[mask]))
    # Each region is labelled with its smallest flat index.
    flat = np.flatnonzero(mask.ravel())
    assert np.all(labels.ravel()[flat] <= flat)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("shape", [(180, 320), (320, 180)])
def test_the_longest_paths_of_a_working_map_settle(connectivity, shape):
    assert_same_regions(serpentine(*shape), connectivity)
    assert_same_regions(spiral(*shape), connectivity)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_random_masks_have_opencvs_regions(connectivity):
    rng = np.random.default_rng(7)
    for density in (0.3, 0.5, 0.6):
        assert_same_regions(rng.random((90, 160)) < density, connectivity)


def test_diagonal_neighbours_join_only_with_eight_connectivity():
    mask = np.eye(5, dtype=bool)
    assert len(np.unique(label_regions(torch.from_numpy(mask), 8)[torch.from_numpy(mask)])) == 1
    assert len(np.unique(label_regions(torch.from_numpy(mask), 4)[torch.from_numpy(mask)])) == 5


def test_region_figures_match_opencvs_stats():
    rng = np.random.default_rng(3)
    mask = rng.random((60, 80)) < 0.5
    values = torch.from_numpy(rng.random((60, 80)).astype(np.float32))
    labels = label_regions(torch.from_numpy(mask), 8)
    count, reference, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = region_sums(labels, torch.ones(60, 80))
    peaks = region_reduce(labels, values, "amax")
    border = touches_border(labels)
    for region in range(1, count):
        where = reference == region
        root = int(labels[torch.from_numpy(where)][0])
        assert areas[root] == stats[region, cv2.CC_STAT_AREA]
        assert peaks[root] == values[torch.from_numpy(where)].max()
        x, y, w, h = stats[region, :4]
        assert bool(border[root]) == (x == 0 or y == 0 or x + w == 80 or y + h == 60)
