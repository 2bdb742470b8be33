"""The shipped blending weights at the outline, on photos never trained on: no worse than linear blending on
synthetic cut-outs (their gain is measured on real footage, which tests may not read; README)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models import registry
from models.training.blend_data import WORK_LONG_SIDE, BlendTriplets, PipelineMatte
from models.training.evaluate_blend import sample_scores

pytestmark = pytest.mark.skipif("learned" not in registry.usable("blend"), reason="no shipped blending weights")


@pytest.fixture(scope="module")
def held_out_triplets(grace_hopper):
    """Cut-outs over two photos of the corpus's test split (scikit-image's cat, the Hopper portrait)."""
    import skimage.data

    photos = []
    for rgb in (skimage.data.chelsea(), grace_hopper):
        scale = WORK_LONG_SIDE / max(rgb.shape[:2])
        photos.append(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    return BlendTriplets([], photos, train=False, length=8, seed=5, refine=PipelineMatte().refine)


def test_on_held_out_cut_outs_the_learned_blend_stays_level_with_linear_blending(held_out_triplets):
    blends = {name: registry.create("blend", name) for name in ("linear", "learned")}
    gains = []
    for index in range(len(held_out_triplets)):
        scores = sample_scores(held_out_triplets[index], blends)
        assert scores is not None  # every triplet has an outline
        gains.append(scores["learned"]["band_psnr"] - scores["linear"]["band_psnr"])
    # Measured: −0.06 dB here, better on 4 of these 8 synthetic cut-outs with procedural hair. The weights
    # trained on synthetic triplets alone gave +0.31 dB (5 of 8) here but less on real footage; the shipped
    # ones, half of whose last fine-tune was real matte errors, gain +0.58 dB on the held-out DAVIS sequences
    # (+0.37 before) and +1.33 dB on the 60 held-out corpus triplets. The weights before their fine-tuning on
    # the current matte post-processing's mattes gave −2.2 dB here.
    assert np.mean(gains) > -0.3, gains
    assert sum(g > 0 for g in gains) >= 4, gains
