"""Connected regions of a working copy's masks, shared by the matte's region decisions
(:mod:`models.matting.confidence` and the opt-in :mod:`models.matting.solidify`)."""
from __future__ import annotations

import cv2
import numpy as np


def small_regions(mask: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, ids): the 8-connected regions of ``mask`` (bool) and the labels of those smaller than
    ``share`` of the largest one (none when there is at most one region)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background and at most one region
        return labels, np.empty(0, np.int64)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return labels, np.flatnonzero(areas < share * areas.max()) + 1


def enclosed_pockets(person: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, ids): the 4-connected regions of ``~person`` and the labels of those that do not touch
    the frame's border and are smaller than ``share`` of the person's area."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats((~person).astype(np.uint8), connectivity=4)
    x, y, w, h = (stats[:, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    rows, cols = person.shape
    enclosed = (x > 0) & (y > 0) & (x + w < cols) & (y + h < rows)
    small = enclosed & (stats[:, cv2.CC_STAT_AREA] < share * np.count_nonzero(person))
    small[0] = False  # label 0: the person's own pixels
    return labels, np.flatnonzero(small)
