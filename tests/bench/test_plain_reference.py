"""The plain reference row: a minimal virtual background, the yardstick of every bench ratio."""
from __future__ import annotations

import cv2
import numpy as np

from app.backgrounds import ColourBackground
from app.commands.plain_reference import KEEP, MODEL_SIZE, PlainVirtualBackground
from app.timing import StageTimes
from models.frame import Frame
from models.matting.mediapipe_selfie import MediaPipeSelfie


def test_plain_is_the_landscape_mask_averaged_enlarged_and_blended(grace_hopper):
    rgb = cv2.resize(grace_hopper, (320, 240))
    background = ColourBackground((0, 128, 255))
    model = MediaPipeSelfie(variant="landscape")
    app, times = PlainVirtualBackground(), StageTimes()
    try:
        first = app(Frame(rgb, 0, 0.0), background, times)
        mirrored = app(Frame(rgb[:, ::-1].copy(), 1, 1 / 30), background, times)
        small = cv2.resize(rgb, MODEL_SIZE, interpolation=cv2.INTER_AREA)
        mask_1 = model.segment(small)
        mask_2 = model.segment(cv2.resize(rgb[:, ::-1].copy(), MODEL_SIZE, interpolation=cv2.INTER_AREA))
    finally:
        model.close()
        app.close()
    picture = np.full_like(rgb, (0, 128, 255))

    def blended(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        alpha = cv2.resize(mask, (320, 240), interpolation=cv2.INTER_LINEAR)
        return alpha[..., None] * frame + (1 - alpha[..., None]) * picture

    assert np.abs(first - blended(rgb, mask_1)).max() <= 1  # the first frame: its own mask
    # the second frame's mask is averaged with the first one's (the person moved: a mirror image)
    want = blended(rgb[:, ::-1], KEEP * mask_1 + (1 - KEEP) * mask_2)
    assert np.abs(mirrored - want).max() <= 1
    assert np.abs(mirrored - blended(rgb[:, ::-1], mask_2)).max() > 10  # which the average really changes
    assert {"matting", "background", "blend"} <= set(times.summary())
