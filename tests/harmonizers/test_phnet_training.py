"""PHNet training: the Lion update and each loss of §4.4 against a straightforward formula, the small
configuration and its confidence head, a tiny training run whose weights load through the stage and which
resumes, and the head trained alone on a frozen network."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from models.harmonizers.phnet.network import CONFIGS, SMALL, PHNet
from models.harmonizers.phnet.stage import PHNetHarmonizer
from models.harmonizers.realtime import SmallInputs
from models.ops.checkpoint import save_safetensors
from models.training import train_phnet
from models.training.lion import Lion
from models.training.train_phnet import fn_mse, gradient_loss, phnet_loss, psnr_loss, share_loss_terms


# --- Lion ---------------------------------------------------------------------------------------------------
def test_lion_follows_its_formula_over_several_steps():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(4, 3, generator=g, dtype=torch.float64)
    p = torch.nn.Parameter(theta.clone())
    lr, (b1, b2), decay = 0.01, (0.8, 0.95), 0.1
    opt = Lion([p], lr=lr, betas=(b1, b2), weight_decay=decay)
    m = torch.zeros_like(theta)
    for _ in range(3):
        grad = torch.randn(4, 3, generator=g, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        c = b1 * m + (1 - b1) * grad
        theta = theta - lr * (torch.sign(c) + decay * theta)
        m = b2 * m + (1 - b2) * grad
        torch.testing.assert_close(p.data, theta, rtol=0, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["momentum"], m, rtol=0, atol=1e-12)


def test_lion_moves_every_coordinate_by_the_learning_rate_whatever_the_gradient_scale():
    p = torch.nn.Parameter(torch.zeros(5))
    p.grad = torch.tensor([1e-6, -3.0, 1e4, -1e-9, 2.0])
    Lion([p], lr=0.5).step()
    assert p.data.tolist() == [-0.5, 0.5, -0.5, 0.5, -0.5]


def test_lion_rejects_a_bad_learning_rate():
    with pytest.raises(ValueError, match="lr > 0"):
        Lion([torch.nn.Parameter(torch.zeros(1))], lr=0)


# --- losses ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def pair():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 3, 12, 10, generator=g, dtype=torch.float64)
    pred = (target + 0.1 * torch.randn(3, 3, 12, 10, generator=g, dtype=torch.float64)).clamp(0, 1)
    mask = torch.zeros(3, 1, 12, 10, dtype=torch.float64)
    mask[0, :, 2:10, 3:8] = 1      # 40 pixels: below A_min, which then divides
    mask[1] = 1                    # 120 pixels
    mask[2, :, :, :5] = 0.5        # soft
    return pred, target, mask


def test_psnr_loss_is_100_over_the_psnr_of_each_image(pair):
    pred, target = pair[:2]
    expected = np.mean([100 / (10 * math.log10(1 / float(((p - t) ** 2).mean()))) for p, t in zip(pred, target)])
    assert psnr_loss(pred, target).item() == pytest.approx(expected, rel=1e-12)
    assert psnr_loss(target, target).item() == pytest.approx(100 / 50)  # floored at 50 dB


def test_fn_mse_divides_the_squared_error_by_channels_times_the_floored_area(pair):
    pred, target, mask = pair
    per_sample = []
    for p, t, m in zip(pred, target, mask):
        total = sum(float((p[c, y, x] - t[c, y, x]) ** 2) for c in range(3) for y in range(12) for x in range(10))
        per_sample.append(total / (3 * max(100.0, float(m.sum()))))
    assert fn_mse(pred, target, mask).item() == pytest.approx(np.mean(per_sample), rel=1e-12)


def test_gradient_loss_is_the_mse_of_the_finite_differences_of_the_masked_images(pair):
    pred, target, mask = (x.numpy() for x in pair)
    p, t = pred * mask, target * mask
    expected = (np.mean((np.diff(p, axis=3) - np.diff(t, axis=3)) ** 2)
                + np.mean((np.diff(p, axis=2) - np.diff(t, axis=2)) ** 2))
    assert gradient_loss(*pair).item() == pytest.approx(expected, rel=1e-12)


def test_the_total_is_the_weighted_sum_of_eq_15(pair):
    total, terms = phnet_loss(*pair)
    assert set(terms) == {"psnr", "fnmse", "grad"}
    assert total.item() == pytest.approx(0.2 * terms["psnr"] + 0.01 * terms["fnmse"] + 0.01 * terms["grad"])
    pred, target, mask = (x.clone().requires_grad_(i == 0) for i, x in enumerate(pair))
    phnet_loss(pred, target, mask)[0].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_the_share_loss_terms_give_fn_mse_of_the_output_at_every_share(pair):
    target, mask = pair[1], pair[2]
    g = torch.Generator().manual_seed(2)
    composite = (target + 0.2 * (torch.rand(target.shape, generator=g, dtype=torch.float64) - 0.5) * mask).clamp(0, 1)
    out = torch.rand(target.shape, generator=g, dtype=torch.float64)
    a, b, c = share_loss_terms(composite, out, target, mask).unbind(1)
    for share in (0.0, 0.3, 1.0):
        shown = torch.lerp(composite, composite + share * (out - composite), mask)  # as harmonize_padded shows it
        expected = fn_mse(shown, target, mask).item()
        assert (a - 2 * b * share + c * share ** 2).mean().item() == pytest.approx(expected, rel=1e-12)


# --- the small configuration ------------------------------------------------------------------------------
def test_a_small_checkpoint_is_recognised_and_official_layouts_are_untouched(tmp_path):
    assert [c.name for c in CONFIGS] == ["iharmony4", "ffhqh", "small"]
    torch.manual_seed(0)
    net = PHNet(SMALL)
    path = tmp_path / "small.safetensors"
    save_safetensors(net.half(), path)
    loaded = PHNet.from_checkpoint(path)
    assert loaded.config == SMALL
    assert sum(p.numel() for p in loaded.parameters()) < 1_000_000  # ~1 MB in fp16
    assert loaded.confidence is not None and all(PHNet(c).confidence is None for c in CONFIGS if c != SMALL)


@pytest.mark.parametrize("logit, expected", [(-40.0, "composite"), (40.0, "prediction")])
def test_the_confidence_head_moves_the_composite_towards_the_prediction_by_its_share(logit, expected):
    torch.manual_seed(0)
    net = PHNet(SMALL).eval()
    net.confidence.fc[2].bias.data.fill_(logit)   # its last layer starts at zero weight: the share is σ(bias)
    composite, mask = torch.rand(2, 3, 32, 24), (torch.rand(2, 1, 32, 24) > 0.5).float()
    with torch.no_grad():
        out, prediction = net(composite, mask), net.prediction(composite, mask)
    torch.testing.assert_close(out, composite if expected == "composite" else prediction, rtol=0, atol=1e-6)
    assert (prediction - composite).abs().mean() > 0.01   # the two cases differ


# --- a tiny training run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve smooth random 'photos' in a folder; the hash split puts most of them in training."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"scene{i}.png"), cv2.resize(small, (80, 60), interpolation=cv2.INTER_CUBIC))
    return folder


def run(photos, out, checkpoint, steps, *extra):
    train_phnet.main(["--data", str(photos), "--out", str(out), "--checkpoint", str(checkpoint),
                      "--steps", str(steps), "--epoch-steps", "1", "--batch-size", "2", "--size", "32",
                      "--no-person-masks", *extra])


def test_a_tiny_run_writes_fp16_weights_the_stage_loads_and_resumes(photos, tmp_path):
    out, checkpoint = tmp_path / "phnet-tiny.safetensors", tmp_path / "tiny.ckpt"
    run(photos, out, checkpoint, 2)
    with safe_open(str(out), "pt") as f:
        training = json.loads(f.metadata()["training"])
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert dtypes == {"F16", "I64"}  # BatchNorm's step counters stay integers
    assert training["steps"] == 2 and training["config"]["enc_sizes"] == list(SMALL.enc_sizes)
    assert [h["step"] for h in training["history"]] == [1, 2]

    stage = PHNetHarmonizer(weights=out)
    assert stage.network.config == SMALL
    rng = np.random.default_rng(1)
    composite = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    mask = np.zeros((40, 56), np.float32)
    mask[8:36, 16:40] = 1
    image = stage.predict_image(SmallInputs(composite, mask, None), {})
    assert image.shape == (40, 56, 3) and np.isfinite(image).all()
    stage.close()

    first = torch.load(checkpoint, weights_only=True)["model"]
    run(photos, out, checkpoint, 3, "--resume")
    state = torch.load(checkpoint, weights_only=True)
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [1, 2, 3]  # one more step, not three
    assert any(not torch.equal(first[k], v) for k, v in state["model"].items())


def test_the_head_alone_trains_on_a_frozen_network_started_from_weights_without_one(photos, tmp_path):
    torch.manual_seed(0)
    headless = {k: v for k, v in PHNet(SMALL).half().state_dict().items() if not k.startswith("confidence.")}
    init, out = tmp_path / "headless.safetensors", tmp_path / "phnet-head.safetensors"
    safetensors.torch.save_file(headless, str(init))
    train_phnet.main(["--data", str(photos), "--out", str(out), "--init", str(init), "--confidence-only",
                      "--confidence-samples", "6", "--steps", "4", "--epoch-steps", "2", "--batch-size", "2",
                      "--size", "32", "--no-person-masks"])
    trained = PHNet.from_checkpoint(out)
    state = trained.state_dict()
    assert all(torch.equal(state[k].half(), v) for k, v in headless.items())  # the network is untouched
    assert trained.confidence.fc[2].weight.abs().sum() > 0                   # the head learned (it starts at 0)
    with safe_open(str(out), "pt") as f:
        training = json.loads(f.metadata()["training"])
    assert training["samples"] == 6 and [h["step"] for h in training["history"]] == [2, 4]


def test_averaging_puts_the_network_on_the_line_between_init_and_tuned_and_keeps_init_s_head():
    torch.manual_seed(0)
    init, tuned = PHNet(SMALL).state_dict(), PHNet(SMALL).state_dict()
    tuned = {k: v + 1 if v.is_floating_point() else v + 5 for k, v in tuned.items()}
    mixed = train_phnet.average_states(init, tuned, 0.25)
    name = next(k for k, v in init.items() if v.is_floating_point() and not k.startswith("confidence."))
    assert torch.allclose(mixed[name], 0.75 * init[name] + 0.25 * tuned[name])
    heads = [k for k in init if k.startswith("confidence.")]
    integers = [k for k, v in init.items() if not v.is_floating_point()]
    assert heads and integers
    assert all(torch.equal(mixed[k], init[k]) for k in heads + integers)
    assert all(torch.equal(train_phnet.average_states(init, tuned, w)[name], init[name] if w == 0 else tuned[name])
               for w in (0.0, 1.0))


def test_averaging_with_weights_of_another_configuration_says_which_tensor_is_missing():
    init = PHNet(SMALL).state_dict()
    tuned = {k: v for k, v in init.items() if not k.startswith("confidence.")}
    dropped = next(iter(tuned))
    del tuned[dropped]
    with pytest.raises(ValueError, match=f"lack 1 tensors.*{dropped}"):
        train_phnet.average_states(init, tuned, 0.5)


def test_the_head_trains_on_the_averaged_network(photos, tmp_path):
    torch.manual_seed(0)
    init, tuned, out = (tmp_path / f"{n}.safetensors" for n in ("init", "tuned", "head"))
    save_safetensors(PHNet(SMALL).half(), init)
    save_safetensors(PHNet(SMALL).half(), tuned)
    train_phnet.main(["--data", str(photos), "--out", str(out), "--init", str(init), "--average-with", str(tuned),
                      "--average-weight", "0.5", "--confidence-only", "--confidence-samples", "4", "--steps", "2",
                      "--epoch-steps", "2", "--batch-size", "2", "--size", "32", "--no-person-masks"])
    a, b, trained = (PHNet.from_checkpoint(p).state_dict() for p in (init, tuned, out))
    name = next(k for k, v in a.items() if v.is_floating_point() and not k.startswith("confidence."))
    assert torch.allclose(trained[name].float(), (a[name].float() + b[name].float()) / 2, atol=1e-3)
    with safe_open(str(out), "pt") as f:
        training = json.loads(f.metadata()["training"])
    assert training["average_with"] == "tuned.safetensors" and training["average_weight"] == 0.5


def test_averaging_needs_init_and_a_weight_between_0_and_1(photos, tmp_path, capsys):
    base = ["--data", str(photos), "--out", str(tmp_path / "x.safetensors")]
    for extra, said in ((["--average-with", "t.safetensors"], "--average-with needs --init"),
                        (["--init", "i.safetensors", "--average-with", "t.safetensors", "--average-weight", "1.5"],
                         "--average-weight must be in [0, 1]")):
        with pytest.raises(SystemExit) as exit_info:
            train_phnet.main(base + extra)
        assert exit_info.value.code == 2 and said in capsys.readouterr().err


def test_confidence_only_needs_weights_to_start_from(photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_phnet.main(["--data", str(photos), "--out", str(tmp_path / "x.safetensors"), "--confidence-only"])
    assert exit_info.value.code == 2 and "--confidence-only needs --init" in capsys.readouterr().err


def test_recording_puts_the_phnet_row_and_architecture_in_the_manifest(tmp_path):
    out = tmp_path / "phnet-small.safetensors"
    torch.manual_seed(0)
    save_safetensors(PHNet(SMALL).half(), out, {"training": json.dumps({"steps": 1})})
    rows = {"phnet": {"fmse": 1.0, "identity_fmse": 2.0}, "none": {"fmse": 3.0, "identity_fmse": 0.0}}
    (tmp_path / "eval.json").write_text(json.dumps({"split": "test", "results": rows}))
    train_phnet.main(["--out", str(out), "--record", str(tmp_path / "eval.json"), "--default"])
    (entry,) = json.loads((tmp_path / "MANIFEST.json").read_text())["weights"]
    assert entry["default"] and entry["architecture"]["class"] == "models.harmonizers.phnet.network.PHNet"
    assert entry["architecture"]["options"]["config"] == "small" and entry["architecture"]["storage"] == ["F16", "I64"]
    assert entry["evaluation"]["results"] == {"model": rows["phnet"], "none": rows["none"]}
