"""Shared pieces of the blends' "leave the person alone" tests: a person whose matte doubts parts of
the interior, and the check that outside the mixed band a blend is exactly linear blending."""
from __future__ import annotations

import numpy as np

from models.blending.band import mixed_band
from models.blending.base import Blend
from models.blending.linear import blend_linear, blend_linear_torch
from models.frame import Frame
from models.matting.base import Matte
from models.ops.tensor_image import alpha_tensor, upload
from models.stream import StreamState

OLD_ROOM, NEW_ROOM = (30, 200, 60), (40, 60, 220)


def person_with_doubts(w: int = 400, h: int = 240, seed: int = 0):
    """A textured person (a disc with a 6-px soft rim) filmed in front of a green room, whose matte is a
    little below 1 (0.95) over one interior patch and well below it (0.7) over another, both far from
    the outline (the doubts of a matting model about a cheek): frame, alpha, a blue complete background
    and the two patches (bool)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((100 - np.hypot(xx - w / 2, yy - h / 2)) / 6 + 0.5, 0, 1).astype(np.float32)
    patches = np.zeros((h, w), bool)
    for x, level in ((w // 2 - 50, 0.95), (w // 2 + 10, 0.7)):
        alpha[h // 2 - 20:h // 2 + 20, x:x + 40] = level
        patches[h // 2 - 20:h // 2 + 20, x:x + 40] = True
    person = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
    rgb = (alpha[..., None] * person + (1 - alpha[..., None]) * np.float32(OLD_ROOM)).round().astype(np.uint8)
    return rgb, alpha, np.full((h, w, 3), NEW_ROOM, np.uint8), patches


def linear_outside_the_band(blend: Blend, tensor: bool):
    """Blend :func:`person_with_doubts` on the host or device path and check that wherever the mixed band
    is empty — the doubted patches included — α is the matte's and the output is bit-identical to linear
    blending of the camera frame (α = 1: the camera's pixels). Returns (output, linear, band) as H×W×3
    arrays (uint8 on the host, float in [0,1] from the device) and the band (bool H×W)."""
    rgb, alpha, background, patches = person_with_doubts()
    band = mixed_band(alpha)
    assert band.any() and not band[patches].any()
    state = StreamState(live=False)
    if tensor:
        pixels, bg, a = upload(rgb, "cpu"), upload(background, "cpu"), alpha_tensor(alpha, "cpu")
        out = blend.blend(Frame(rgb, 0, 0.0, pixels), Matte(a), bg, state)
        camera, linear, image, used = (x[0].permute(1, 2, 0).numpy() for x in
                                       (pixels, blend_linear_torch(pixels, a, bg), out.image, out.alpha))
        used = used[..., 0]
    else:
        out = blend.blend(Frame(rgb, 0, 0.0), Matte(alpha), background, state)
        camera, linear, image, used = rgb, blend_linear(rgb, alpha, background), out.image, out.alpha
    outside = ~band
    assert np.array_equal(used[outside], alpha[outside])
    assert np.array_equal(image[outside], linear[outside])
    assert np.array_equal(image[alpha == 1], camera[alpha == 1])
    return image, linear, band
