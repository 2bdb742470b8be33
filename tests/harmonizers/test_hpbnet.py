"""HPBNet: the modulated convolution, Eq. 3, the network, the stage, weights, export, synthesis and training."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.harmonizers.hpbnet.colour_temperature import background_gains, colour_temperature_correction
from models.harmonizers.hpbnet.network import HpbNet, ModulatedConv
from models.harmonizers.hpbnet.stage import HpbnetHarmonizer
from models.harmonizers.still import harmonize_still
from models.ops.checkpoint import CheckpointError, save_safetensors
from models.ops.colour_transfer import lab_stats, to_lab
from models.stream import StreamState
from models.training import portrait_synthesis as ps

OPTIONS = {"width": 4, "levels": 3, "w_dim": 8, "mlp_layers": 2, "noise": False}


def _random_net(seed: int = 0, **options) -> HpbNet:
    """A small network whose output differs from its input (its ToRGB layers start at zero)."""
    torch.manual_seed(seed)
    net = HpbNet(**{**OPTIONS, **options})
    with torch.no_grad():
        for layer in net.to_rgb:
            layer.conv.weight.normal_(0, 0.1)
            layer.bias.normal_(0, 0.05)
        for conv in (*net.convs, *net.to_rgb):
            conv.conv.affine.weight.normal_(0, 0.3)  # so the latent code matters
    return net.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import json

    path = tmp_path_factory.mktemp("hpbnet") / "hpbnet.safetensors"
    save_safetensors(_random_net().half(), path, {"architecture": json.dumps(OPTIONS)})
    return path


def _scene(h: int = 90, w: int = 160, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[h // 4:, w // 3:2 * w // 3] = 1
    return rgb, mask, np.full_like(rgb, (40, 80, 200))


# --- The modulated convolution and Eq. 3 -----------------------------------------------------------

@pytest.mark.parametrize("demodulate, kernel", [(True, 3), (False, 1)])
def test_modulated_conv_matches_a_per_sample_weight(demodulate, kernel):
    torch.manual_seed(1)
    conv = ModulatedConv(5, 6, 7, kernel=kernel, demodulate=demodulate)
    with torch.no_grad():
        conv.affine.weight.normal_()
    x, w = torch.randn(3, 5, 9, 11), torch.randn(3, 7)
    got = conv(x, w)
    for n in range(3):
        # StyleGAN2, Eq. 1–3: w' = s_i·w_oik; w'' = w' / sqrt(Σ_ik w'² + ε) per output channel.
        s = conv.affine.weight @ w[n] + conv.affine.bias
        weight = conv.weight * s[None, :, None, None]
        if demodulate:
            weight = weight / torch.sqrt(weight.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        want = F.conv2d(x[n:n + 1], weight, padding=kernel // 2)
        torch.testing.assert_close(got[n:n + 1], want, rtol=1e-4, atol=1e-5)


def test_demodulation_cancels_a_uniform_style_scale():
    torch.manual_seed(2)
    conv = ModulatedConv(4, 3, 2)
    with torch.no_grad():
        conv.affine.weight.normal_()
        conv.affine.bias.zero_()
    x, w = torch.randn(1, 4, 5, 5), torch.randn(1, 2)
    torch.testing.assert_close(conv(x, 10 * w), conv(x, w), rtol=1e-4, atol=1e-5)


def test_eq3_matches_a_straightforward_formula():
    rng = np.random.default_rng(4)
    composite = rng.uniform(0.1, 0.9, (2, 3, 6, 8)).astype(np.float32)
    output = rng.uniform(0.1, 0.9, (2, 3, 6, 8)).astype(np.float32)
    mask = rng.uniform(size=(2, 1, 6, 8)).astype(np.float32)
    got = colour_temperature_correction(*map(torch.from_numpy, (output, composite, mask))).numpy()
    want = np.empty_like(composite)
    for n in range(2):
        for c in range(3):
            gain = np.sum(composite[n, c] * (1 - mask[n, 0])) / np.sum(output[n, c] * (1 - mask[n, 0]))
            want[n, c] = mask[n, 0] * gain * output[n, c] + (1 - mask[n, 0]) * composite[n, c]
    np.testing.assert_allclose(got, np.clip(want, 0, 1), rtol=1e-5, atol=1e-6)


def test_eq3_undoes_a_colour_cast_the_network_put_on_the_whole_image():
    composite = torch.rand(1, 3, 10, 12) * 0.5 + 0.2
    mask = torch.zeros(1, 1, 10, 12)
    mask[..., 3:, 4:8] = 1
    cast = torch.tensor([1.3, 1.0, 0.7]).view(1, 3, 1, 1)
    torch.testing.assert_close(colour_temperature_correction(composite * cast, composite, mask), composite)


def test_eq3_keeps_gains_of_one_without_a_visible_background():
    out = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(background_gains(torch.rand(1, 3, 4, 4), out, torch.ones(1, 1, 4, 4)),
                               torch.ones(1, 3, 1, 1))


# --- The network -------------------------------------------------------------------------------------

def test_an_untrained_network_is_the_identity_at_any_size():
    net = HpbNet(**OPTIONS).eval()
    composite, mask = torch.rand(1, 3, 50, 84), torch.rand(1, 1, 50, 84)
    with torch.no_grad():
        pyramid, out = net.pyramid(composite, mask), net(composite, mask)
    assert [p.shape[-2:] for p in pyramid] == [(7, 11), (13, 21), (25, 42), (50, 84)]  # Eq. 1's scales
    torch.testing.assert_close(out, composite)


def test_only_the_masked_region_changes_and_the_output_depends_on_the_latent():
    net = _random_net()
    composite, mask = torch.rand(1, 3, 64, 96), torch.zeros(1, 1, 64, 96)
    mask[..., 16:, 32:64] = 1
    with torch.no_grad():
        out = net(composite, mask)
        outside = mask.expand_as(composite) == 0
        torch.testing.assert_close(out[outside], composite[outside])
        assert (out - composite).abs().max() > 1e-2
        net.offsets.bias.add_(1.0)  # another W+ code, same U-Net features
        assert (net(composite, mask) - out).abs().max() > 1e-3


def test_noise_is_used_only_while_training():
    net = _random_net(noise=True)
    with torch.no_grad():
        for conv in net.convs:
            conv.noise_strength.fill_(0.5)
        x, m = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
        torch.testing.assert_close(net(x, m), net(x, m))
        net.train()
        assert (net(x, m) - net(x, m)).abs().max() > 0


def test_the_unconditional_generator_makes_images_of_its_fixed_size():
    net = HpbNet(**OPTIONS)
    image = net.generate(torch.randn(2, OPTIONS["w_dim"]))
    assert image.shape == (2, 3, 32, 32)  # 4·2^levels
    frozen = {id(p) for p in net.generator_parameters()}
    assert id(net.const) in frozen and id(net.to_rgb[0].conv.weight) in frozen
    assert not frozen & {id(p) for p in (*net.encoder.parameters(), *net.concat.parameters(),
                                          *net.project.parameters())}


# --- The stage -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w", [(90, 160), (160, 90), (37, 51)])
def test_the_stage_harmonizes_a_non_square_still_inside_the_mask(weights, h, w):
    harmonizer = HpbnetHarmonizer(weights=weights)
    rgb, mask, background = _scene(h, w)
    out = harmonize_still(harmonizer, rgb, mask, background)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inside = mask > 0.5
    np.testing.assert_array_equal(out[~inside], rgb[~inside])
    assert np.abs(out[inside].astype(int) - rgb[inside]).mean() > 1
    assert np.array_equal(out, harmonize_still(harmonizer, rgb, mask, background))  # deterministic on files


def test_the_registry_builds_it_and_strength_zero_leaves_the_stream_alone(weights):
    harmonizer = registry.create("harmonizer", "hpbnet", strength=0.0, weights=weights)
    rgb, mask, background = _scene(72, 40)
    state = StreamState(live=False)
    try:
        for i in range(3):
            out = harmonizer.harmonize(Composite(rgb, mask, rgb), background, Frame(rgb, i, i * 0.1), state)
        assert np.array_equal(out, rgb) and harmonizer.ready(state)
    finally:
        state.close()


def test_it_runs_live_in_the_pipeline_at_720p_and_swaps_at_run_time(weights):
    from tests.pipeline.test_pipeline import make_pipeline

    hpbnet = HpbnetHarmonizer(weights=weights)
    pipeline = make_pipeline(harmonizer=hpbnet)  # live: predictions on the worker, the frame loop never waits
    rgb = np.random.default_rng(7).integers(40, 200, (720, 1280, 3), dtype=np.uint8)
    try:
        outputs = [pipeline.process(Frame(rgb, i, i / 30)).output for i in range(6)]
        deadline = time.monotonic() + 10
        while not hpbnet.ready(pipeline.harmonizer_state) and time.monotonic() < deadline:
            time.sleep(0.01)  # the first prediction lands on the worker
        outputs.append(pipeline.process(Frame(rgb, 6, 6 / 30)).output)
        assert all(o.shape == (720, 1280, 3) and o.dtype == np.uint8 for o in outputs)
        assert hpbnet.ready(pipeline.harmonizer_state)
        pipeline.set_harmonizer(registry.create("harmonizer", "none"))
        pipeline.process(Frame(rgb, 7, 7 / 30))
        pipeline.set_harmonizer(HpbnetHarmonizer(weights=weights))  # and back, a fresh stream
        assert pipeline.process(Frame(rgb, 8, 8 / 30)).output.shape == (720, 1280, 3)
    finally:
        pipeline.close()


# --- Weights ---------------------------------------------------------------------------------------------

def test_weights_load_strictly_with_their_stored_architecture(weights, tmp_path):
    net = HpbNet.from_checkpoint(weights)
    assert net.options() == OPTIONS
    assert all(p.dtype == torch.float32 for p in net.parameters())  # fp16 on disk, float32 to run
    other = tmp_path / "other.safetensors"
    save_safetensors(HpbNet(**OPTIONS), other)  # no metadata: the default architecture does not fit
    with pytest.raises(CheckpointError, match="do not fit the HPBNet harmonizer network"):
        HpbNet.from_checkpoint(other)


def test_bad_weights_files_give_a_clear_error(weights, tmp_path):
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="could not be read"):
        registry.create("harmonizer", "hpbnet", weights=damaged)
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, foreign)
    with pytest.raises(CheckpointError, match="key '.*' is missing"):
        registry.create("harmonizer", "hpbnet", weights=foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        registry.create("harmonizer", "hpbnet", weights=tmp_path / "absent.safetensors")


def test_the_onnx_export_agrees_with_torch(weights, tmp_path):
    from models.ops.onnx_export import export_onnx

    (spec,) = HpbnetHarmonizer(weights=weights).onnx_specs()
    assert spec.input_names == ("composite", "mask")
    assert export_onnx(spec, tmp_path / "hpbnet.onnx") <= 1e-4  # ONNX Runtime runs it, batch of two


# --- The paper's synthesis ----------------------------------------------------------------------------------

def test_white_balance_jitter_scales_linear_light_per_channel():
    image = torch.rand(1, 3, 4, 4) * 0.6
    gains = torch.tensor([[0.8, 1.0, 1.25]])
    want = (image ** 2.2 * gains[:, :, None, None]).clamp(0, 1) ** (1 / 2.2)
    torch.testing.assert_close(ps.white_balance_jitter(image, gains), want)


def test_lab_transfer_gives_the_portrait_the_reference_portraits_statistics():
    rng = np.random.default_rng(5)
    image = torch.from_numpy(rng.uniform(0.2, 0.5, (1, 3, 24, 24)).astype(np.float32))
    reference = torch.from_numpy(rng.uniform(0.4, 0.8, (1, 3, 24, 24)).astype(np.float32))
    mask, ref_mask = torch.zeros(1, 1, 24, 24), torch.zeros(1, 1, 24, 24)
    mask[..., 4:20, 6:18], ref_mask[..., :12, :] = 1, 1
    out = ps.lab_transfer(image, mask, reference, ref_mask)
    lab = lambda t: to_lab(np.ascontiguousarray(t[0].permute(1, 2, 0).numpy()))  # noqa: E731
    got, want = lab_stats(lab(out), mask[0, 0].numpy()), lab_stats(lab(reference), ref_mask[0, 0].numpy())
    np.testing.assert_allclose(got[0], want[0], atol=0.5)
    outside = mask.expand_as(image) == 0
    torch.testing.assert_close(out[outside], image[outside])


def test_portrait_pairs_change_only_the_portrait_of_the_jittered_target():
    rng = np.random.default_rng(6)
    real = torch.rand(3, 3, 32, 32)
    mask = torch.zeros(3, 1, 32, 32)
    mask[..., 8:, 10:22] = 1
    composite, target = ps.portrait_pairs(real, mask, rng)
    outside = mask.expand_as(real) == 0
    torch.testing.assert_close(composite[outside], target[outside])
    assert (composite - target).abs()[~outside].mean() > 0.01
    assert (target - real).abs().mean() > 0.001  # the white balance moved the whole photo


def test_directional_shading_ramps_across_the_portrait():
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 5:15, 5:15] = 1
    gain = ps.directional_shading(mask, torch.tensor([[1.0, 0.0]]), torch.tensor([0.5]))[0, 0]
    assert gain[10, 14] > 1.2 and gain[10, 5] < 0.8 and torch.all(gain[:, 1:] >= gain[:, :-1])


# --- Training -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_training_writes_weights_the_stage_loads_resumes_and_can_freeze_a_pretrained_generator(tmp_path, astronaut):
    from models.training import train_hpbnet
    from tests.conftest import photo_folder

    photos = photo_folder(tmp_path / "photos", astronaut, "train", 3)
    small = ["--size", "32", "--batch-size", "2", "--width", "4", "--levels", "3", "--w-dim", "8",
             "--epoch-steps", "1", "--no-person-masks", "--portrait-fraction", "0.5"]
    out = tmp_path / "hpbnet.safetensors"
    common = ["--data", str(photos), "--out", str(out), *small, "--checkpoint", str(tmp_path / "state.ckpt")]
    record = train_hpbnet.train(train_hpbnet.parse_args([*common, "--steps", "2"]))
    assert [h["step"] for h in record["history"]] == [1, 2]
    assert HpbNet.from_checkpoint(out).options()["levels"] == 3
    record = train_hpbnet.train(train_hpbnet.parse_args([*common, "--steps", "3", "--resume"]))
    assert [h["step"] for h in record["history"]] == [1, 2, 3]  # continued, not restarted
    harmonize_still(HpbnetHarmonizer(weights=out), *_scene(40, 60))

    generator = tmp_path / "generator.safetensors"
    train_hpbnet.train(train_hpbnet.parse_args(["--data", str(photos), "--out", str(generator), *small,
                                                "--steps", "1", "--pretrain-generator",
                                                "--checkpoint", str(tmp_path / "g.ckpt")]))
    tuned = tmp_path / "tuned.safetensors"
    train_hpbnet.train(train_hpbnet.parse_args(["--data", str(photos), "--out", str(tuned), *small, "--steps", "2",
                                                "--init", str(generator), "--freeze-generator",
                                                "--checkpoint", str(tmp_path / "t.ckpt")]))
    before, after = HpbNet.from_checkpoint(generator), HpbNet.from_checkpoint(tuned)
    for a, b in zip(before.generator_parameters(), after.generator_parameters()):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(before.encoder.parameters(), after.encoder.parameters()))
