"""``reinhard``: Reinhard et al. (2001) Lab mean/std transfer as a live harmonizer (a baseline).

The foreground's Lab statistics are moved to those of the complete background
(the whole-image statistics of the new scene). The background's statistics are
computed once per background and cached in the stream; the recoloured small copy
becomes a colour map through the shared image-to-image machinery.
"""
from __future__ import annotations

import numpy as np
import torch

from models.frame import on_device
from models.harmonizers.realtime import ImageToImageHarmonizer, SmallInputs
from models.ops.colour_transfer import lab_stats, reinhard_lab, to_lab
from models.registry import register


def _host(image) -> np.ndarray:
    """A small device copy as a host array (float32 H×W×C in [0,1]); host arrays pass through."""
    if on_device(image):
        return image[0].permute(1, 2, 0).float().cpu().numpy()
    return image


@register("harmonizer", "reinhard", "Lab mean/std transfer to the background (Reinhard et al. 2001; baseline)")
class ReinhardHarmonizer(ImageToImageHarmonizer):
    """Training-free colour transfer towards the complete background."""

    uses_background = True

    def predict_image(self, inputs: SmallInputs, cache):
        if cache.get("key") is not inputs.background:
            bg = _host(inputs.background)
            bg = bg.astype(np.float32) / 255 if bg.dtype == np.uint8 else bg
            cache["key"], cache["stats"] = inputs.background, lab_stats(to_lab(bg))
        composite, mask = _host(inputs.composite), _host(inputs.mask)
        mask = mask.reshape(mask.shape[:2])
        if mask.sum() < 1:
            return inputs.composite
        out = reinhard_lab(composite, mask, cache["stats"])
        if on_device(inputs.composite):
            return torch.from_numpy(out).permute(2, 0, 1)[None].to(inputs.composite.device)
        return out
