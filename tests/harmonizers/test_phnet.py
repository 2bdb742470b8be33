"""PHNet: the official state-dict layout, strict loading, every block against an independent formula,
the whole forward pass against a functional re-derivation, and the ``phnet`` stage.

Manifests (``tests/data/phnet/``) list the official keys, shapes and dtypes; the forward-pass
ranges below were measured with the authors' code (seed 0, 256², centred 128² mask).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import registry
from models import weights as weights_module
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.phnet import PHNet
from models.harmonizers.phnet.blocks import (PatchColourTransfer, PatchFeatureExtractor, PatchNormalization,
                                             SqueezeExcitation, patch_sums)
from models.harmonizers.phnet.network import FFHQH, IHARMONY4, PHNetConfig
from models.harmonizers.phnet.stage import PHNetHarmonizer, harmonize_padded
from models.harmonizers.realtime import SmallInputs
from models.ops.checkpoint import CheckpointError
from models.stream import StreamState

DATA = Path(__file__).resolve().parents[1] / "data" / "phnet"
MANIFESTS = {"ffhqh": DATA / "ffhqh_state_dict_keys.txt", "iharmony4": DATA / "iharmony4_state_dict_keys.txt"}
PARAMETERS = {"ffhqh": 39_921_641, "iharmony4": 9_994_295}
# Authors' code, seed 0 (see the module docstring): min and max of the raw output.
SEED0_RANGE = {"ffhqh": (0.3394, 0.6432), "iharmony4": (0.2702, 0.6872)}


def manifest(config: PHNetConfig) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    rows = []
    for line in MANIFESTS[config.name].read_text().splitlines():
        key, shape, dtype = line.split()
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s), getattr(torch, dtype)))
    return rows


def random_state(config: PHNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict built from the manifest alone: random values of the listed shapes and dtypes."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in manifest(config):
        if dtype == torch.int64:
            state[key] = torch.zeros(shape, dtype=dtype)
        elif key.endswith("running_var"):  # a variance must be positive
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.fixture(scope="module", params=[IHARMONY4, FFHQH], ids=lambda c: c.name)
def official(request, tmp_path_factory):
    """(config, state dict, .pth path, loaded network) for each configuration, built once."""
    config = request.param
    state = random_state(config)
    path = tmp_path_factory.mktemp("phnet") / f"{config.name}.pth"
    torch.save(state, path)
    return config, state, path, PHNet.from_checkpoint(path)


@pytest.fixture(scope="module")
def iharmony_file(tmp_path_factory):
    state = random_state(IHARMONY4, seed=1)
    path = tmp_path_factory.mktemp("phnet") / "iharmony512.pth"
    torch.save(state, path)
    return state, path


def person(h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4: h - h // 5, w // 3: w - w // 4] = 1
    return torch.rand(1, 3, h, w, generator=g), mask


# --- layout and loading ------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [IHARMONY4, FFHQH], ids=lambda c: c.name)
def test_state_dict_matches_the_official_manifest_key_for_key(config):
    with torch.device("meta"):
        net = PHNet(config)
    ours = [(k, tuple(v.shape), v.dtype) for k, v in net.state_dict().items()]
    assert ours == manifest(config)
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS[config.name]


def test_checkpoint_loads_strictly_picks_its_configuration_and_runs(official):
    config, state, _, net = official
    assert net.config == config and not net.training
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    composite, mask = person(32, 48)
    with torch.no_grad():
        out = net(composite, mask)
    assert out.shape == (1, 3, 32, 48) and torch.isfinite(out).all()
    assert 0 < out.min() and out.max() < 1  # a sigmoid


def test_a_nested_training_checkpoint_loads_too(iharmony_file, tmp_path):
    state, _ = iharmony_file
    path = tmp_path / "best.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    assert PHNet.from_checkpoint(path).config == IHARMONY4


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("normalizers.1.grid_weights"), "key 'normalizers.1.grid_weights' is missing"),
    (lambda s: s.update({"normalizers.3.weights": torch.ones(2)}), "key 'normalizers.3.weights' is unexpected"),
    (lambda s: s.update({"skip.6.rconv.weight": torch.zeros(3, 6, 1, 1)}),
     "key 'skip.6.rconv.weight' has shape (3, 6, 1, 1) instead of (3, 6, 3, 3)"),
])
def test_a_file_that_does_not_fit_names_the_first_problem_and_its_configuration(iharmony_file, tmp_path,
                                                                                  change, message):
    state = dict(iharmony_file[0])
    change(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        PHNet.from_checkpoint(path)
    assert message in str(err.value)
    assert "iharmony4 configuration" in str(err.value) and str(path) in str(err.value)


def test_sides_must_be_multiples_of_8(official):
    net = official[3]
    with pytest.raises(ValueError, match="multiples of 8, got 30×40"):
        net(*person(30, 40))


# --- each block against a straightforward formula with explicit loops over patches ------------------------
def bounds(n: int, g: int) -> list[tuple[int, int]]:
    """Patch i covers [i·⌊n/g⌋, (i+1)·⌊n/g⌋); the last one runs to the end."""
    step = n // g
    return [(i * step, n if i == g - 1 else (i + 1) * step) for i in range(g)]


def ref_masked(x, m, eps=1e-7):
    weight = m.sum(dim=(2, 3), keepdim=True) + eps
    mean = (x * m).sum(dim=(2, 3), keepdim=True) / weight
    var = (((x - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / weight
    return mean, torch.sqrt(var + eps)


def ref_pn(pn: PatchNormalization, f, m):
    g, mb = pn.grid, 1 - m
    n, c = f.shape[:2]
    patched = torch.zeros(n, c, 1, 1, dtype=f.dtype)
    for p, (r0, r1) in enumerate(bounds(f.shape[2], g)):
        for q, (c0, c1) in enumerate(bounds(f.shape[3], g)):
            fp, mp = f[:, :, r0:r1, c0:c1], mb[:, :, r0:r1, c0:c1]
            mean = (fp * mp).sum(dim=(2, 3), keepdim=True) / (mp.sum(dim=(2, 3), keepdim=True) + 1e-7)
            patched += pn.grid_weights[:, :, p, q, None, None] * mean
    mu_b, sd_b = ref_masked(f, mb)
    mu_f, sd_f = ref_masked(f, m)
    fhat = (f - mu_f) / sd_f
    fg = (pn.weights[0] * (pn.fg_var * (sd_b * fhat + mu_b) + pn.fg_bias)
          + pn.weights[1] * (pn.patched_fg_var * (sd_b * fhat + patched) + pn.patched_fg_bias))
    bg = pn.bg_var * (f - mu_b) / sd_b + pn.bg_bias
    return m * fg + mb * bg


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random, so that each one's role is checked (the init values are symmetric)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("channels, grid, h, w", [
    (5, 3, 13, 11),   # uneven patches: the remainder goes to the last row/column
    (4, 4, 16, 24),   # even split, non-square
    (6, 10, 8, 12),   # more patches than rows: empty patches have mean 0
    (3, 1, 9, 7),
])
def test_patch_normalization_matches_the_loop_formula(channels, grid, h, w):
    pn = PatchNormalization(channels, grid)
    randomise(pn, grid)
    g = torch.Generator().manual_seed(h)
    f = torch.randn(2, channels, h, w, generator=g, dtype=torch.float64)
    m = (torch.rand(2, 1, h, w, generator=g) > 0.6).double()
    with torch.no_grad():
        pn = pn.double()
        torch.testing.assert_close(pn(f, m), ref_pn(pn, f, m), rtol=1e-10, atol=1e-10)
        soft = torch.rand(2, 1, h, w, generator=g, dtype=torch.float64)  # the official m² in σ holds for soft m
        torch.testing.assert_close(pn(f, soft), ref_pn(pn, f, soft), rtol=1e-10, atol=1e-10)


def test_patch_sums_cover_every_pixel_once():
    x = torch.randn(1, 2, 13, 9, dtype=torch.float64)
    sums = patch_sums(x, 4)
    for p, (r0, r1) in enumerate(bounds(13, 4)):
        for q, (c0, c1) in enumerate(bounds(9, 4)):
            torch.testing.assert_close(sums[:, :, p, q], x[:, :, r0:r1, c0:c1].sum(dim=(2, 3)))


def ref_colour_transfer(w, grid, fg, bg, m, eps=1e-8):
    def stats(x):
        return x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True, unbiased=True).sqrt()

    (mf, sf), (mb, sb) = stats(fg), stats(bg)
    out = torch.empty_like(fg)
    for r0, r1 in bounds(fg.shape[2], grid):
        for c0, c1 in bounds(fg.shape[3], grid):
            pf, pb = fg[:, :, r0:r1, c0:c1], bg[:, :, r0:r1, c0:c1]
            (lmf, lsf), (lmb, lsb) = stats(pf), stats(pb)
            local = (pf - lmf) * (lsb / (lsf + eps)) + lmb
            global_ = (pf - mf) * (sb / (sf + eps)) + mb
            out[:, :, r0:r1, c0:c1] = w[0] * local + w[1] * global_
    return out * m + bg / 255 * (1 - m)


@pytest.mark.parametrize("grid, h, w", [(3, 40, 56), (5, 43, 37), (5, 256, 256)])
def test_pfe_matches_the_loop_formula(grid, h, w):
    pfe = PatchFeatureExtractor(grid)
    g = torch.Generator().manual_seed(grid + h)
    image = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    m = (torch.rand(2, 1, h, w, generator=g) > 0.5).double()
    with torch.no_grad():
        pfe = pfe.double()
        pfe.patch_harmonizer.grid_weights.copy_(torch.tensor([0.7, 0.4]))
        transfer = ref_colour_transfer(pfe.patch_harmonizer.grid_weights, grid, image * m, image * (1 - m), m)
        torch.testing.assert_close(pfe.patch_harmonizer(image * m, image * (1 - m), m), transfer)
        conv = pfe.head[0]
        expected = F.relu(F.conv2d(torch.cat((image * m, transfer), 1), conv.weight, conv.bias, padding=1))
        torch.testing.assert_close(pfe(image, m), expected)
    assert isinstance(pfe.patch_harmonizer, PatchColourTransfer)


def test_squeeze_excitation_matches_its_formula():
    se = SqueezeExcitation(32)
    g = torch.Generator().manual_seed(0)
    x, aux = torch.randn(2, 32, 5, 7, generator=g), torch.randn(2, 3, 40, 56, generator=g)
    w1, b1, w2, b2 = se.fc[0].weight, se.fc[0].bias, se.fc[2].weight, se.fc[2].bias
    with torch.no_grad():
        pooled = x.mean(dim=(2, 3))
        y = torch.sigmoid(torch.relu(pooled @ w1.T + b1) @ w2.T + b2)[:, :, None, None]
        s = torch.sigmoid(aux.flatten(2).max(dim=2).values.mean(dim=1))[:, None, None, None]
        torch.testing.assert_close(se(x, aux), x * y + s * x)


# --- the whole network against a functional re-derivation of the official forward pass -------------------
def ref_forward(net: PHNet, image, mask):
    """Written from the official definition with torch.nn.functional and the state dict alone."""
    sd, cfg = net.state_dict(), net.config
    fg, bg = image * mask, image * (1 - mask)
    transfer = ref_colour_transfer(sd["feature_extractor.patch_harmonizer.grid_weights"], cfg.grid_count[1],
                                   fg, bg, mask)
    aux = F.relu(F.conv2d(torch.cat((fg, transfer), 1), sd["feature_extractor.head.0.weight"],
                          sd["feature_extractor.head.0.bias"], padding=1))
    x, outs, masks = image, [image], [mask]
    for i in range(6):
        x = F.relu(F.instance_norm(F.conv2d(x, sd[f"encoder.{i}.0.weight"], sd[f"encoder.{i}.0.bias"],
                                            stride=2 - i % 2, padding=1)))
        masks.append(F.interpolate(masks[-1], scale_factor=0.5 if i % 2 == 0 else 1.0, mode="nearest"))
        outs.append(x)
    se_w = torch.sigmoid(torch.relu(x.mean(dim=(2, 3)) @ sd["SE_block.fc.0.weight"].T + sd["SE_block.fc.0.bias"])
                         @ sd["SE_block.fc.2.weight"].T + sd["SE_block.fc.2.bias"])
    s = torch.sigmoid(aux.amax(dim=(2, 3)).mean(dim=1))
    x = x * se_w[:, :, None, None] + x * s[:, None, None, None]
    start = 7 - len(cfg.grid_count)
    for i, (skip, m) in enumerate(zip(outs[::-1][:6], masks[::-1][:6])):
        if i >= start:
            skip = ref_pn(net.normalizers[i - start], skip, m)
        x = F.relu(F.conv2d(torch.cat((x, skip), 1), sd[f"skip.{i}.rconv.weight"], padding=1))
        x = F.conv_transpose2d(x, sd[f"decoder.{i}.0.weight"], sd[f"decoder.{i}.0.bias"],
                               stride=1 + i % 2, padding=1)
        if i < 3:
            x = F.batch_norm(x, sd[f"decoder.{i}.1.running_mean"], sd[f"decoder.{i}.1.running_var"],
                             sd[f"decoder.{i}.1.weight"], sd[f"decoder.{i}.1.bias"], eps=1e-5)
        if i < 5:
            x = F.leaky_relu(x, 0.01)
    return torch.sigmoid(x)


@pytest.mark.parametrize("h, w", [(32, 48), (16, 16)])  # 16²: the iHarmony 10×10 grid meets an 8×8 map
def test_forward_matches_the_functional_reference(official, h, w):
    net = official[3]
    composite, mask = person(h, w, seed=h)
    with torch.no_grad():
        torch.testing.assert_close(net(composite, mask), ref_forward(net, composite, mask), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("config", [IHARMONY4, pytest.param(FFHQH, marks=pytest.mark.slow)], ids=lambda c: c.name)
def test_seeded_initialisation_reproduces_the_official_output_range(config):
    # Submodules are created in the official order, so seed 0 gives the official random weights.
    torch.manual_seed(0)
    net = PHNet(config).eval()
    torch.manual_seed(0)
    composite = torch.rand(1, 3, 256, 256)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:192, 64:192] = 1
    with torch.no_grad():
        out = net(composite, mask)
    low, high = SEED0_RANGE[config.name]
    assert abs(out.min().item() - low) < 1e-4 and abs(out.max().item() - high) < 1e-4


# --- the stage ---------------------------------------------------------------------------------------------
class Spy(torch.nn.Module):
    """A stand-in network: records what it saw and answers a flat 0.25."""

    def forward(self, composite, mask):
        self.seen = composite.clone(), mask.clone()
        return composite * 0 + 0.25


def test_padding_keeps_the_picture_and_the_crop_puts_it_back():
    composite, _ = person(50, 70)
    soft = torch.rand(1, 1, 50, 70, generator=torch.Generator().manual_seed(3))
    spy = Spy()
    out = harmonize_padded(spy, composite, soft)
    seen, mask = spy.seen
    assert seen.shape[-2:] == (56, 72)
    assert torch.equal(seen[..., :50, :70], composite)  # padded, never resampled: no distortion
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and torch.equal(mask[..., :50, :70], (soft > 0.5).float())
    assert out.shape == composite.shape
    torch.testing.assert_close(out, 0.25 * soft + composite * (1 - soft))  # upstream's composite, soft matte


def test_registered_with_a_clear_reason_when_no_weights_are_shipped(monkeypatch):
    assert "phnet" in registry.names("harmonizer")
    monkeypatch.setattr(weights_module, "default_weights", lambda architecture: None)
    reason = registry.entry("harmonizer", "phnet").check()
    assert reason == ("no PHNet weights shipped; pass --harmonizer-weights PATH to an official PHNet checkpoint "
                      "(iharmony512.pth, ffhqh512.pth)")
    with pytest.raises(FileNotFoundError, match="--harmonizer-weights"):
        PHNetHarmonizer()


def test_stage_predicts_at_any_size_and_keeps_the_aspect_ratio(iharmony_file):
    h = registry.create("harmonizer", "phnet", weights=str(iharmony_file[1]))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    alpha = np.zeros((480, 640), np.float32)
    alpha[100:400, 200:450] = 1
    small = h._small_inputs(Composite(frame, alpha, frame), frame, StreamState(live=False))
    assert small.composite.shape == (192, 256, 3) and small.mask.shape == (192, 256)

    composite = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask = np.zeros((50, 70), np.float32)
    mask[10:40, 20:50] = 1
    out = h.predict_image(SmallInputs(composite, mask, None), {})
    assert out.shape == (50, 70, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(out[mask == 0], composite[mask == 0] / 255, atol=1e-6)  # background untouched
    tensor = h.predict_image(SmallInputs(torch.from_numpy(composite).permute(2, 0, 1)[None].float() / 255,
                                         torch.from_numpy(mask)[None, None], None), {})
    assert tensor.shape == (1, 3, 50, 70)
    np.testing.assert_allclose(tensor[0].permute(1, 2, 0).numpy(), out, atol=1e-6)
    assert np.isfinite(h.predict(SmallInputs(composite, mask, None), {})).all()  # a 3×4 colour map

    out = h.harmonize(Composite(frame, alpha, frame), frame, Frame(frame, 0, 0.0), StreamState(live=False))
    assert out.shape == frame.shape and np.array_equal(out[alpha == 0], frame[alpha == 0])


@pytest.mark.slow
def test_onnx_export_agrees_with_torch(iharmony_file, tmp_path):
    from models.ops.onnx_export import export_onnx

    h = PHNetHarmonizer(weights=iharmony_file[1])
    (spec,) = h.onnx_specs()
    assert spec.input_names == ("composite", "mask") and spec.input_shapes == ((1, 3, 256, 256), (1, 1, 256, 256))
    assert export_onnx(spec, tmp_path / "phnet.onnx") <= 1e-4
