"""Connected regions of a working copy's masks, shared by the matte's region decisions
(:mod:`models.matting.confidence` and the opt-in :mod:`models.matting.solidify`)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Regions:
    """The labelled regions of a mask and the ones selected among them (``ids``)."""

    labels: np.ndarray  # int32 H×W, 0 = outside every region
    ids: np.ndarray     # the selected labels
    count: int          # labels in use, 0 included

    def mask(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Bool H×W: the pixels of regions ``ids`` (default: the selected ones)."""
        chosen = np.zeros(self.count, bool)
        chosen[self.ids if ids is None else ids] = True
        return chosen[self.labels]

    def reduce(self, values: np.ndarray, ufunc: np.ufunc, initial: float) -> np.ndarray:
        """``ufunc`` (np.maximum, np.minimum) of ``values`` (H×W) over each selected region, in the order of
        ``ids``. Only the selected regions' pixels are visited: they are small next to the whole map."""
        inside = self.mask()
        out = np.full(self.count, initial, values.dtype)
        ufunc.at(out, self.labels[inside], values[inside])
        return out[self.ids]


def small_regions(mask: np.ndarray, share: float) -> Regions:
    """The 8-connected regions of ``mask`` (bool), with those smaller than ``share`` of the largest one
    selected (none when there is at most one region)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background and at most one region
        return Regions(labels, np.empty(0, np.int64), count)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return Regions(labels, np.flatnonzero(areas < share * areas.max()) + 1, count)


def enclosed_pockets(person: np.ndarray, share: float) -> Regions:
    """The 4-connected regions of ``~person``, with those selected that do not touch the frame's border
    and are smaller than ``share`` of the person's area."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~person).astype(np.uint8), connectivity=4)
    x, y, w, h = (stats[:, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    rows, cols = person.shape
    enclosed = (x > 0) & (y > 0) & (x + w < cols) & (y + h < rows)
    small = enclosed & (stats[:, cv2.CC_STAT_AREA] < share * np.count_nonzero(person))
    small[0] = False  # label 0: the person's own pixels
    return Regions(labels, np.flatnonzero(small), count)
