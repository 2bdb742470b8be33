"""Regions of a frame that per-pixel work is limited to."""
from __future__ import annotations

import cv2
import numpy as np

from models.ops.regions import strip_boxes


def silhouette() -> np.ndarray:
    """A head over shoulders (uint8 0/1, 180×320), and a speck in the corner."""
    mask = np.zeros((180, 320), np.uint8)
    cv2.circle(mask, (160, 50), 30, 1, -1)
    mask[90:, 60:260] = 1
    mask[2, 2] = 1
    return mask


def test_strips_cover_every_pixel_once_and_far_less_than_the_box():
    mask = silhouette()
    boxes = strip_boxes(mask, 4000)
    covered = np.zeros(mask.shape, int)
    for rows, cols in boxes:
        covered[rows, cols] += 1
    assert covered.max() == 1 and (covered[mask > 0] == 1).all()  # disjoint, and nothing left out
    area = sum((r.stop - r.start) * (c.stop - c.start) for r, c in boxes)
    assert area < 0.55 * mask.size  # the one box around head, shoulders and speck is the whole frame
    assert all(mask[box].any(axis=1)[[0, -1]].all() and mask[box].any(axis=0)[[0, -1]].all() for box in boxes)
    assert strip_boxes(np.zeros_like(mask), 4000) == []
    assert strip_boxes(mask * np.float32(0.3), 4000) == boxes  # a float matte: its α > 0
