"""Keep the person bright: the floor under how far the shared machinery lets any harmonizer darken or flatten."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.assemble import make_harmonizer
from app.cli import build_parser, main
from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.harmonizer import filters as F
from models.harmonizers.harmonizer.lut_export import cube_table
from models.harmonizers.keep_bright import KEEP_CONTRAST, MAX_DARKEN, NO_LIFT, PULL, lift_affine
from models.harmonizers.realtime import ImageToImageHarmonizer, TransformHarmonizer, toward
from models.ops.colour_transform import apply_colour_affine, compose_affine, identity_affine
from models.stream import StreamState
from tests.conftest import write_image

#: Rec. 601 luma, written out here so that the floors are checked against an independent formula.
WEIGHTS = np.array([0.299, 0.587, 0.114])
#: A warm, darker, flatter look: y = gain·(x − 0.5) + 0.5·level + tint, per channel.
DARKER = (0.5, 0.4, (0.06, 0.0, -0.06))
BRIGHTER = (1.1, 1.2, (0.02, 0.0, -0.02))
GENTLE = (0.97, 0.97, (0.02, 0.0, -0.02))


def look(rgb: np.ndarray | torch.Tensor, params: tuple) -> np.ndarray | torch.Tensor:
    """``params`` = (contrast gain, level, tint) applied to float RGB in [0,1] (H×W×3 or 1×3×H×W)."""
    gain, level, tint = params
    tint = np.asarray(tint, np.float32)
    if isinstance(rgb, torch.Tensor):
        return (gain * (rgb - 0.5) + 0.5 * level + torch.from_numpy(tint).view(1, 3, 1, 1)).clamp(0, 1)
    return np.clip(gain * (rgb - 0.5) + 0.5 * level + tint, 0, 1)


class LookNetwork(ImageToImageHarmonizer):
    """An image-to-image "network" that gives every person ``params``' look (its output becomes a colour map)."""

    def __init__(self, params: tuple, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params

    def predict_image(self, inputs, cache):
        image = inputs.composite
        if isinstance(image, torch.Tensor):
            return look(image, self.params)
        return (look(image / 255, self.params) * 255).round().astype(np.uint8)


class LookTransform(TransformHarmonizer):
    """A parameter harmonizer whose transform is (gain, level, r, g, b tint), applied by its own formula: the
    lift then runs as a second pass (the path of the filter harmonizer)."""

    def __init__(self, params: tuple, **kwargs) -> None:
        super().__init__(**kwargs)
        gain, level, tint = params
        self.params = np.array([gain, level, *tint], np.float32)

    @property
    def identity(self):
        return np.array([1, 1, 0, 0, 0], np.float32)

    def predict(self, inputs, cache):
        return self.params

    def apply(self, composite, transform, stream):
        params = (float(transform[0]), float(transform[1]), tuple(float(v) for v in transform[2:]))
        image, alpha = composite.image, composite.alpha
        if isinstance(image, torch.Tensor):
            return torch.lerp(image, look(image, params), alpha)
        out = alpha[..., None] * look(image / 255, params) + (1 - alpha[..., None]) * image / 255
        return (out * 255).round().astype(np.uint8)


KINDS = [LookNetwork, LookTransform]


def scene(background_level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite, alpha, complete background): a textured person of mean luma ≈ 0.5 over a flat grey background."""
    rng = np.random.default_rng(7)
    h, w = 180, 320
    person = np.clip(rng.normal(128, 45, (h, w, 3)), 0, 255).astype(np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[30:170, 110:210] = 1.0
    alpha[30:170, 105:110] = 0.5  # a soft edge
    background = np.full((h, w, 3), background_level, np.uint8)
    composite = (alpha[..., None] * person + (1 - alpha[..., None]) * background).round().astype(np.uint8)
    return composite, alpha, background


def person_luma(image: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    y = image.astype(np.float64) @ WEIGHTS / 255
    inside = y[alpha == 1]
    return float(inside.mean()), float(inside.std())


def harmonized(kind, params, composite, alpha, background, keep_bright=True, strength=1.0) -> np.ndarray:
    h = kind(params, strength=strength)
    h.keep_bright = keep_bright
    state = StreamState(live=False)
    try:
        return h.harmonize(Composite(composite, alpha, composite), background, Frame(composite, 0, 0.0), state)
    finally:
        state.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_strong_darkening_over_a_dark_background_is_held_at_the_floor(kind):
    composite, alpha, background = scene(60)
    (m0, s0), mb = person_luma(composite, alpha), 60 / 255
    floor = m0 - min(PULL * (m0 - mb), MAX_DARKEN * m0)

    free = person_luma(harmonized(kind, DARKER, composite, alpha, background, keep_bright=False), alpha)
    assert free[0] < floor - 0.1 and free[1] < KEEP_CONTRAST * s0 - 0.02  # the look alone goes far below

    out = harmonized(kind, DARKER, composite, alpha, background)
    mean, std = person_luma(out, alpha)
    assert mean == pytest.approx(floor, abs=0.015)  # lifted to the floor, not above it
    assert std >= KEEP_CONTRAST * s0 - 0.01
    # only luma is lifted: the warm tint of the look (red minus blue) is kept
    inside = alpha == 1
    tint = lambda image: float((image[inside][:, 0].astype(float) - image[inside][:, 2]).mean())  # noqa: E731
    free_out = harmonized(kind, DARKER, composite, alpha, background, keep_bright=False)
    assert tint(out) - tint(composite) == pytest.approx(tint(free_out) - tint(composite), abs=2.5)
    assert tint(out) > tint(composite) + 20
    assert np.array_equal(out[alpha == 0], composite[alpha == 0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("params, level", [(BRIGHTER, 230), (GENTLE, 60)], ids=["brighter-bright", "gentle-dark"])
def test_a_look_above_the_floors_is_left_exactly_as_it_is(kind, params, level):
    composite, alpha, background = scene(level)
    free = harmonized(kind, params, composite, alpha, background, keep_bright=False)
    assert np.abs(free.astype(int) - composite)[alpha == 1].mean() > 3  # the look does change the person
    assert np.array_equal(harmonized(kind, params, composite, alpha, background), free)


def test_a_bright_background_justifies_no_darkening():
    composite, alpha, background = scene(230)
    m0 = person_luma(composite, alpha)[0]
    out = harmonized(LookNetwork, DARKER, composite, alpha, background)
    assert person_luma(out, alpha)[0] == pytest.approx(m0, abs=0.015)


@pytest.mark.parametrize("kind", KINDS)
def test_strength_zero_and_none_leave_the_composite_alone(kind):
    composite, alpha, background = scene(60)
    assert harmonized(kind, DARKER, composite, alpha, background, strength=0.0) is composite
    none = registry.create("harmonizer", "none")
    assert none.keep_bright
    out = none.harmonize(Composite(composite, alpha, composite), background, Frame(composite, 0, 0.0),
                         StreamState(live=False))
    assert out is composite


def test_strength_moves_the_look_and_its_lift_from_the_identity_alike():
    composite, alpha, background = scene(60)
    h = LookNetwork(DARKER, strength=0.5)
    state = StreamState(live=False)
    out = h.harmonize(Composite(composite, alpha, composite), background, Frame(composite, 0, 0.0), state)
    transform, lift = h.current_transform(state), h.current_lift(state)
    assert lift[0] > 1.05  # the full look is lifted
    half = compose_affine(lift_affine(toward(NO_LIFT, lift, 0.5)), toward(identity_affine(), transform, 0.5))
    assert np.array_equal(out, apply_colour_affine(composite, alpha, half))
    state.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_tensor_path_matches_the_host_path(kind):
    composite, alpha, background = scene(60)
    host = harmonized(kind, DARKER, composite, alpha, background)
    to_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    tensor_alpha = torch.from_numpy(alpha)[None, None]
    device = harmonized(kind, DARKER, to_tensor(composite), tensor_alpha, to_tensor(background))
    device = (device[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(device - host).mean() < 0.6
    assert np.abs(device - host).max() <= 3
    assert person_luma(device, alpha)[0] > person_luma(harmonized(kind, DARKER, composite, alpha, background,
                                                                  keep_bright=False), alpha)[0] + 0.1


def test_the_filter_harmonizer_is_limited_and_its_lut_carries_the_lift():
    composite, alpha, background = scene(60)
    h = registry.create("harmonizer", "harmonizer")
    args = np.array([0.3, -0.4, -0.2, 0, 0, 0], np.float32)  # warmer, much darker (×0.6), flatter (×0.8)
    h.predict = lambda inputs, cache: args
    state = StreamState(live=False)
    out = h.harmonize(Composite(composite, alpha, composite), background, Frame(composite, 0, 0.0), state)
    (m0, s0), mb = person_luma(composite, alpha), 60 / 255
    mean, std = person_luma(out, alpha)
    assert mean == pytest.approx(m0 - min(PULL * (m0 - mb), MAX_DARKEN * m0), abs=0.015)
    assert std >= KEEP_CONTRAST * s0 - 0.01
    # the LUT of the same look: the chain, then the lift; without the lift it is the darker chain
    lift = h.current_lift(state)
    plain, lifted = cube_table(args, composite, size=5), cube_table(args, composite, size=5, lift=lift)
    expected = plain + ((lift[0] - 1) * (plain @ WEIGHTS) + lift[1])[:, None]
    np.testing.assert_allclose(lifted, np.clip(expected, 0, 1), atol=1e-5)
    assert (lifted @ WEIGHTS).mean() > (plain @ WEIGHTS).mean() + 0.05
    state.close()


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-keep-bright"], False)])
def test_the_option_reaches_the_harmonizer_of_harmonize_and_parses_on_run_and_lut(tmp_path, monkeypatch, flag,
                                                                                  expected):
    import app.commands.harmonize as command

    made = []
    monkeypatch.setattr(command, "make_harmonizer", lambda choice: made.append(make_harmonizer(choice)) or made[-1])
    composite, alpha, _ = scene(60)
    cv2.imwrite(str(tmp_path / "m.png"), (alpha * 255).astype(np.uint8))
    assert main(["harmonize", "--harmonizer", "none", "--composite", str(write_image(tmp_path / "c.png", composite)),
                 "--mask", str(tmp_path / "m.png"), "--out", str(tmp_path / "o.png"), *flag]) == 0
    assert made[0].keep_bright is expected
    for argv in (["run"], ["lut", "--background", "blur", "--out", "x.cube"]):
        assert build_parser().parse_args([*argv, *flag]).keep_bright is expected


@pytest.mark.parametrize("lift", [(1.3, 0.05), (1.6, 0.25), (1.0, -0.1)])
def test_the_cpu_filter_pass_applies_the_lift_as_a_second_pass_would(astronaut, lift):
    from models.harmonizers.harmonizer.filter_apply import FilterApplier

    composite = cv2.resize(astronaut, (320, 320))
    yy, xx = np.mgrid[0:320, 0:320]
    alpha = np.clip((160 - np.hypot(xx - 160, yy - 180)) / 40, 0, 1).astype(np.float32)  # a wide soft edge
    args = np.array([0.3, -0.4, -0.2, 0.2, -0.3, 0.2], np.float32)
    applier = FilterApplier("cpu")
    fused = applier(composite, alpha, args, lift=lift)
    # exact: the official float chain (blended by α), then the lift on luma, clipped, blended by α once more
    image = torch.from_numpy(composite).permute(2, 0, 1)[None].double() / 255
    chain = F.apply_filters_reference(image, torch.from_numpy(args)[None].double(),
                                      torch.from_numpy(alpha)[None, None].double())[0].permute(1, 2, 0).numpy()
    a = alpha[..., None]
    mapped = np.clip(chain + ((lift[0] - 1) * (chain @ WEIGHTS) + lift[1])[..., None], 0, 1)
    exact = (chain + a * (mapped - chain)) * 255
    assert np.abs(fused - exact).max() <= 1
    # a second pass over the uint8 chain (what the torch path does) rounds twice: near it, no closer to exact
    two_passes = apply_colour_affine(applier(composite, alpha, args), alpha, lift_affine(np.array(lift)))
    assert np.abs(fused.astype(int) - two_passes).max() <= 2
    assert np.array_equal(fused[alpha == 0], composite[alpha == 0])
    assert np.abs(fused.astype(int) - applier(composite, alpha, args)).max() > 20  # the lift really acts
