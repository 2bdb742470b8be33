"""The complete-background AdaIN harmonizer: Eq. 2, its statistics, caching per background, the stage, weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.adain.network import AdainNet
from models.harmonizers.adain.stage import AdainHarmonizer
from models.harmonizers.still import harmonize_still
from models.ops.checkpoint import CheckpointError, save_safetensors
from models.ops.feature_stats import EPS, adain, masked_mean_std, mean_std
from models.stream import StreamState


def _random_net(width: int = 8, levels: int = 5, seed: int = 0) -> AdainNet:
    """A network whose output differs from its input (the trained head is zero at initialisation)."""
    torch.manual_seed(seed)
    net = AdainNet(width, levels)
    with torch.no_grad():
        net.head[-1].weight.normal_(0, 0.05)
        net.head[-1].bias.copy_(torch.tensor([0.2, -0.1, 0.05]))
    return net.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("adain") / "adain.safetensors"
    net = _random_net()
    save_safetensors(net.half(), path, {"architecture": '{"width": 8, "levels": 5}'})
    return path


def _scene(h: int = 90, w: int = 160, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[h // 4:, w // 3:2 * w // 3] = 1
    background = np.full_like(rgb, (40, 80, 200))
    return rgb, mask, background


# --- Eq. 2 and the statistics ------------------------------------------------------------------

def test_masked_statistics_match_numpy_weighted_moments():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 5)).astype(np.float32)
    m = rng.uniform(size=(2, 1, 7, 5)).astype(np.float32)
    mean, std = masked_mean_std(torch.from_numpy(x), torch.from_numpy(m))
    for n in range(2):
        for c in range(3):
            mu = np.average(x[n, c], weights=m[n, 0])
            var = np.average((x[n, c] - mu) ** 2, weights=m[n, 0])
            assert mean[n, c, 0, 0] == pytest.approx(mu, abs=1e-5)
            assert std[n, c, 0, 0] == pytest.approx(np.sqrt(var + EPS), abs=1e-5)


def test_whole_map_statistics_match_numpy():
    x = np.random.default_rng(2).normal(size=(1, 4, 6, 9)).astype(np.float32)
    mean, std = mean_std(torch.from_numpy(x))
    np.testing.assert_allclose(mean[0, :, 0, 0], x[0].mean((1, 2)), atol=1e-5)
    np.testing.assert_allclose(std[0, :, 0, 0], np.sqrt(x[0].var((1, 2)) + EPS), atol=1e-5)


def test_an_empty_mask_gives_finite_statistics():
    mean, std = masked_mean_std(torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
    assert torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()


def test_eq2_matches_a_straightforward_per_channel_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(2, 3, size=(1, 3, 8, 6)).astype(np.float32)
    m = (rng.uniform(size=(1, 1, 8, 6)) > 0.5).astype(np.float32)
    target_mean, target_std = np.array([0.5, -1.0, 4.0]), np.array([2.0, 0.1, 1.5])
    out = adain(torch.from_numpy(x), torch.from_numpy(m),
                torch.tensor(target_mean, dtype=torch.float32).view(1, 3, 1, 1),
                torch.tensor(target_std, dtype=torch.float32).view(1, 3, 1, 1)).numpy()
    inside = m[0, 0] > 0
    expected = x.copy()
    for c in range(3):
        fg = x[0, c][inside]
        expected[0, c][inside] = target_std[c] * (fg - fg.mean()) / np.sqrt(fg.var() + EPS) + target_mean[c]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # The foreground now has the target statistics; the background is untouched.
    np.testing.assert_allclose(out[0][:, inside].mean(1), target_mean, atol=1e-4)
    np.testing.assert_array_equal(out[0][:, ~inside], x[0][:, ~inside])


# --- The network ---------------------------------------------------------------------------------

def test_an_untrained_network_is_the_identity_at_any_size():
    net = AdainNet(8).eval()
    composite, mask = torch.rand(1, 3, 50, 84), torch.rand(1, 1, 50, 84)
    with torch.no_grad():
        out = net.harmonize(composite, mask, torch.rand(1, 3, 20, 30))
    assert out.shape == composite.shape
    torch.testing.assert_close(out, composite)


def test_only_the_masked_region_changes_and_the_background_steers_it():
    net = _random_net()
    composite = torch.rand(1, 3, 64, 96)
    mask = torch.zeros(1, 1, 64, 96)
    mask[..., 16:, 32:64] = 1
    with torch.no_grad():
        dark = net.harmonize(composite, mask, torch.full((1, 3, 64, 96), 0.1))
        bright = net.harmonize(composite, mask, torch.rand(1, 3, 64, 96))
    outside = mask.expand_as(composite) == 0
    torch.testing.assert_close(dark[outside], composite[outside])
    assert (dark - bright).abs().max() > 1e-3  # Eq. 2 carries the background into the foreground


# --- The stage -------------------------------------------------------------------------------------

def _count_background_stats(harmonizer: AdainHarmonizer, monkeypatch) -> list[int]:
    calls = [0, 0]  # background statistics, network forward passes
    stats, forward = harmonizer.network.background_stats, harmonizer.network.forward

    def counted_stats(*a, **k):
        calls[0] += 1
        return stats(*a, **k)

    def counted_forward(*a, **k):
        calls[1] += 1
        return forward(*a, **k)

    monkeypatch.setattr(harmonizer.network, "background_stats", counted_stats)
    monkeypatch.setattr(harmonizer.network, "forward", counted_forward)
    return calls


def _play(harmonizer, state, rgb, mask, background, frames, start=0):
    out = None
    for i in range(start, start + frames):
        out = harmonizer.harmonize(Composite(rgb, mask, rgb), background, Frame(rgb, i, i * 0.1), state)
    return out


def test_background_statistics_are_computed_once_per_background_per_stream(weights, monkeypatch):
    h = registry.create("harmonizer", "adain", weights=weights, rate_hz=10.0)
    calls = _count_background_stats(h, monkeypatch)
    rgb, mask, background = _scene()
    state = StreamState(live=False)
    try:
        _play(h, state, rgb, mask, background, 5)
        assert calls == [1, 5]  # a prediction every frame, the statistics once
        _play(h, state, rgb, mask, background.copy(), 3, start=5)  # a new background object
        assert calls == [2, 8]
        other = StreamState(live=False)  # another stream keeps its own cache
        _play(h, other, rgb, mask, background, 2)
        other.close()
        assert calls == [3, 10]
    finally:
        state.close()
        h.close()


def test_the_stage_harmonizes_a_non_square_still_inside_the_mask(weights):
    h = AdainHarmonizer(weights=weights)
    rgb, mask, background = _scene(90, 160)
    out = harmonize_still(h, rgb, mask, background)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inside = mask > 0.5
    np.testing.assert_array_equal(out[~inside], rgb[~inside])
    assert np.abs(out[inside].astype(int) - rgb[inside]).mean() > 1  # the random head changes colours
    assert np.array_equal(out, harmonize_still(h, rgb, mask, background))  # deterministic on files


def test_strength_zero_leaves_the_stream_alone(weights):
    h = AdainHarmonizer(strength=0.0, weights=weights)
    rgb, mask, background = _scene(72, 40)
    state = StreamState(live=False)
    try:
        assert np.array_equal(_play(h, state, rgb, mask, background, 3), rgb)
        assert h.ready(state)
    finally:
        state.close()


# --- Weights -----------------------------------------------------------------------------------------

def test_weights_load_strictly_with_their_stored_architecture(weights, tmp_path):
    net = AdainNet.from_checkpoint(weights)
    assert net.options() == {"width": 8, "levels": 5}
    assert all(p.dtype == torch.float32 for p in net.parameters())  # fp16 on disk, float32 to run
    wide = tmp_path / "wide.safetensors"
    save_safetensors(AdainNet(8, 6), wide)  # no metadata: the default architecture does not fit
    with pytest.raises(CheckpointError, match="do not fit the AdaIN harmonizer network"):
        AdainNet.from_checkpoint(wide)


def test_a_damaged_or_foreign_weights_file_gives_a_clear_error(weights, tmp_path):
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="could not be read"):
        registry.create("harmonizer", "adain", weights=damaged)
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, foreign)
    with pytest.raises(CheckpointError, match="key '.*' is missing"):
        registry.create("harmonizer", "adain", weights=foreign)


def test_the_onnx_export_takes_composite_mask_and_background_and_agrees_with_torch(weights, tmp_path):
    from models.ops.onnx_export import export_onnx

    (spec,) = AdainHarmonizer(weights=weights).onnx_specs()
    assert spec.input_names == ("composite", "mask", "background")
    assert export_onnx(spec, tmp_path / "adain.onnx") <= 1e-4  # ONNX Runtime runs it, batch of two


# --- Training ------------------------------------------------------------------------------------------

def test_training_writes_weights_the_stage_loads_and_resumes(tmp_path, astronaut):
    from models.training import train_adain
    from tests.conftest import photo_folder

    photos = photo_folder(tmp_path / "photos", astronaut, "train", 3)
    out = tmp_path / "adain.safetensors"
    common = ["--data", str(photos), "--out", str(out), "--size", "32", "--batch-size", "2", "--width", "4",
              "--epoch-steps", "1", "--no-person-masks", "--checkpoint", str(tmp_path / "state.ckpt")]
    record = train_adain.train(train_adain.parse_args([*common, "--steps", "2"]))
    assert [h["step"] for h in record["history"]] == [1, 2]
    assert AdainNet.from_checkpoint(out).options() == {"width": 4, "levels": 5}
    record = train_adain.train(train_adain.parse_args([*common, "--steps", "3", "--resume"]))
    assert [h["step"] for h in record["history"]] == [1, 2, 3]  # continued, not restarted
