"""The training side module: synthesis, masks, loss, a tiny training run, evaluation, shipped weights."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.harmonizers.harmonizer import lite as harmonizer_lite
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet, build_lite
from models.ops.checkpoint import load_state_dict_file, load_strict, save_safetensors
from models.ops.colour_transfer import lab_stats, reinhard_lab
from models.training import evaluate, train
from models.training.data import (
    HarmonizationDataset,
    Item,
    collect,
    group_of,
    iharmony4_items,
    place_silhouette,
    random_mask,
    scene_jitter,
    split_of,
)
from models.training.losses import dynamic_loss, masked_step_loss
from models.training.synthesis import complete_background, synthesize
from tests.conftest import photo_folder

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def _batch(n: int = 2, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 3, size, size, generator=gen)
    mask = torch.zeros(n, 1, size, size)
    mask[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    return real, mask


def test_synthesis_is_identity_at_zero_args():
    real, mask = _batch()
    composite, targets = synthesize(real, mask, torch.zeros(2, 6))
    assert len(targets) == 6 and targets[-1] is real
    for image in (composite, *targets):
        torch.testing.assert_close(image, real, atol=1e-4, rtol=0)


def test_synthesis_changes_only_the_masked_region():
    real, mask = _batch()
    args = torch.tensor([[0.8, -0.6, 0.5, -0.7, 0.6, -0.5], [-0.9, 0.7, -0.4, 0.8, -0.6, 0.5]])
    composite, targets = synthesize(real, mask, args)
    outside = mask.expand_as(real) == 0
    assert torch.equal(composite[outside], real[outside])
    assert (composite - real)[~outside].abs().mean() > 0.02
    for target in targets:
        assert torch.equal(target[outside], real[outside])


def test_random_masks_are_soft_and_non_empty():
    for seed in range(8):
        m = random_mask(64, np.random.default_rng(seed))
        assert m.dtype == np.float32 and m.shape == (64, 64)
        assert 0 <= m.min() and m.max() <= 1
        assert 0.05 <= m.mean() <= 0.7
        assert ((m > 0.05) & (m < 0.95)).any(), "edges are blurred, not binary"


def test_person_silhouette_sits_on_the_bottom_edge():
    alpha = np.zeros((80, 60), np.float32)
    alpha[20:80, 15:45] = 1
    placed = place_silhouette(alpha, 64, np.random.default_rng(0))
    assert placed[-1].max() == 1 and placed.mean() > 0.05


def test_complete_background_hides_the_foreground_colours():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 2] = 200                       # blue scene
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1
    rgb[mask > 0] = (255, 0, 0)             # red foreground
    bg = complete_background(rgb, mask)
    assert bg[..., 0].max() < 10 and bg[16:48, 16:48, 2].min() > 150


def test_reinhard_moves_foreground_lab_statistics_to_the_reference():
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal((0.3, 0.5, 0.4), 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1
    image[mask > 0] = np.clip(rng.normal((0.6, 0.35, 0.3), 0.08, (1024, 3)), 0, 1)
    to_lab = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2LAB)  # noqa: E731
    out = reinhard_lab(image, mask, 1 - mask)
    mean, std = lab_stats(to_lab(out), mask)
    ref_mean, ref_std = lab_stats(to_lab(image), 1 - mask)
    np.testing.assert_allclose(mean, ref_mean, atol=0.5)
    np.testing.assert_allclose(std, ref_std, rtol=0.05)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    # A reference image works the same way, and uint8 stays uint8.
    out8 = reinhard_lab((image * 255).astype(np.uint8), mask, (image[:16] * 255).astype(np.uint8))
    assert out8.dtype == np.uint8
    np.testing.assert_allclose(lab_stats(to_lab(out8.astype(np.float32) / 255), mask)[0],
                               lab_stats(to_lab(image[:16]))[0], atol=1.0)


def test_step_loss_and_dynamic_loss_follow_the_formulas():
    pred = torch.tensor([0.5, 0.2, 0.9, 0.0]).reshape(1, 1, 2, 2)
    target = torch.tensor([0.3, 0.2, 0.4, 1.0]).reshape(1, 1, 2, 2)
    mask = torch.tensor([1.0, 1.0, 0.5, 0.0]).reshape(1, 1, 2, 2)
    d2 = (pred - target) ** 2
    per_pixel = torch.sqrt(d2 + 1e-6) + 10 * d2
    expected = (per_pixel * mask).sum() / mask.sum()
    torch.testing.assert_close(masked_step_loss(pred, target, mask), expected.reshape(1), atol=1e-5, rtol=1e-5)

    # Two samples, three steps. Sample 0: 1.0 → 1.5 → 1.2 ; sample 1: 2.0 → 1.0 → 3.0.
    steps = [torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.5, 1.0], requires_grad=True),
             torch.tensor([1.2, 3.0], requires_grad=True)]
    norm = torch.tensor([1.0 + 0.5 + 0.0, 2.0 + 0.0 + 2.0])
    by_hand = ((torch.tensor([1.0, 2.0]) / norm).mean()
               + (torch.tensor([0.5, 0.0]) / norm).mean() + (torch.tensor([0.0, 2.0]) / norm).mean())
    loss = dynamic_loss(steps)
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    # Gradients flow only through the increases, scaled by the detached normaliser.
    torch.testing.assert_close(steps[0].grad, 1 / norm / 2)
    torch.testing.assert_close(steps[1].grad, torch.tensor([1 / 1.5 / 2, 0.0]))
    torch.testing.assert_close(steps[2].grad, torch.tensor([0.0, 1 / 4 / 2]))


def test_scene_jitter_relights_foreground_and_background_alike():
    rgb = np.full((8, 8, 3), 128, np.uint8)
    a, b = (scene_jitter(rgb, np.random.default_rng(s)) for s in (1, 2))
    assert a.shape == rgb.shape and a.dtype == np.uint8 and not np.array_equal(a, b)
    assert (a == a[0, 0]).all()  # one light for the whole scene: every pixel shifts the same way
    np.testing.assert_array_equal(a, scene_jitter(rgb, np.random.default_rng(1)))


def test_every_filter_argument_learns_from_the_start(tmp_path, astronaut):
    """A fresh network must pass a gradient to each of the six heads (temperature uses |x|,
    whose gradient vanishes at exactly 0, so an all-zero head would never learn it)."""
    items = collect([str(photo_folder(tmp_path / "photos", astronaut, "train", 2))], "train")
    data = HarmonizationDataset(items, 64, train=True, length=2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in data[0]}
    torch.manual_seed(0)
    net = build_lite(complete_background=False, pretrained=False)
    loss, _, _ = train.train_step(net, batch, torch.device("cpu"))
    loss.backward()
    for i, head in enumerate(net.regressor.headers):
        assert head[1].weight.grad.abs().sum() > 0, f"argument {i} gets no gradient"


def test_tiny_training_run_lowers_the_loss(tmp_path, astronaut):
    items = collect([str(photo_folder(tmp_path / "photos", astronaut, "train", 3))], "train")
    data = HarmonizationDataset(items, 64, train=True, length=4, with_background=True)
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    torch.manual_seed(0)
    net = build_lite(complete_background=True, pretrained=True)
    train.set_trainable(net, train_blocks=4)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-4)  # the recipe's rate

    def final_loss() -> float:
        with torch.no_grad():
            return train.train_step(net, batch, torch.device("cpu"))[1][-1].item()

    before = final_loss()
    train.train_mode(net)
    for _ in range(12):
        loss, _, _ = train.train_step(net, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert final_loss() < 0.9 * before


def test_train_command_writes_weights_and_resumes(tmp_path, astronaut):
    pytest.importorskip("tqdm")
    photos = photo_folder(tmp_path / "photos", astronaut, "train", 2)
    out, ckpt = tmp_path / "w.safetensors", tmp_path / "w.ckpt"
    common = ["--data", str(photos), "--out", str(out), "--size", "64", "--batch-size", "2",
              "--epoch-steps", "1", "--checkpoint", str(ckpt), "--no-person-masks", "--no-pretrained"]
    train.train(train.parse_args([*common, "--steps", "1"]))
    record = train.train(train.parse_args([*common, "--steps", "2", "--resume"]))
    assert [h["step"] for h in record["history"]] == [1, 2]
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    assert HarmonizerLiteNet.from_checkpoint(out).complete_background is False
    # fine-tuning starts from given weights: with a learning rate of 0 they come out unchanged
    tuned = tmp_path / "tuned.safetensors"
    record = train.train(train.parse_args([*common, "--steps", "1", "--init", str(out), "--out", str(tuned),
                                           "--lr", "0", "--checkpoint", str(tmp_path / "t.ckpt")]))
    assert record["init"] == out.name
    before, after = load_state_dict_file(out), load_state_dict_file(tuned)
    assert all(torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


def test_evaluate_command_scores_model_composite_and_reinhard(tmp_path, astronaut):
    photos = photo_folder(tmp_path / "photos", astronaut, "test", 2)
    weights = tmp_path / "identity.safetensors"
    identity = HarmonizerLiteNet()
    for head in identity.regressor.headers:  # zero argument heads: the identity harmonizer
        torch.nn.init.zeros_(head[1].weight)
    save_safetensors(identity, weights)
    report = evaluate.main(["--harmonizers", "none,reinhard", "--weights", str(weights), "--data", str(photos),
                            "--variants", "2", "--no-person-masks", "--json", str(tmp_path / "eval.json")])
    results = report["results"]
    assert list(results) == ["none", "reinhard", "identity", "reinhard-lab"]
    assert report["held_out_samples"] == 4 and results["none"]["count"] == 4
    for name, r in results.items():
        assert all(np.isfinite(r[m]) for m in evaluate.METRICS if m != "jitter" or name != "reinhard-lab")
    assert results["none"]["fmse"] > results["none"]["mse"] > 0
    assert results["none"]["identity_fmse"] == 0  # the unharmonized composite of a real photo is the photo
    assert results["identity"]["fmse"] == pytest.approx(results["none"]["fmse"], rel=1e-3)
    assert results["identity"]["identity_fmse"] == 0 and results["identity"]["jitter"] == results["none"]["jitter"]
    assert results["none"]["jitter"] > 0  # the noisy clip moves a little by itself
    assert json.loads((tmp_path / "eval.json").read_text())["results"] == results


def test_image_metrics_definitions():
    target = np.zeros((4, 4, 3))
    pred = target.copy()
    pred[:2] = 10.0                              # error only in the top half
    mask = np.zeros((4, 4))
    mask[:2] = 1
    mse, fmse, psnr = evaluate.image_metrics(pred, target, mask)
    assert (mse, fmse) == (50.0, 100.0)
    assert psnr == pytest.approx(10 * np.log10(255 ** 2 / 50))


def test_split_groups_and_iharmony4_layout(tmp_path):
    assert group_of(Path("Elephants_3840x2160.jpg")) == group_of(Path("Elephants.jpg")) == "elephants"
    assert group_of(Path("motorcycle_left.png")) == group_of(Path("motorcycle_right.png"))
    assert split_of("elephants") == split_of("elephants")
    sub = tmp_path / "HFlickr"
    for d in ("composite_images", "masks", "real_images"):
        (sub / d).mkdir(parents=True)
    (sub / "HFlickr_train.txt").write_text("f1_1_1.jpg\nf1_1_2.jpg\nf1_2_1.jpg\n")
    (sub / "HFlickr_test.txt").write_text("f9_1_3.jpg\n")
    train_items = iharmony4_items(tmp_path, "train")
    assert {(it.real.name, it.mask.name) for it in train_items} == {("f1.jpg", "f1_1.png"), ("f1.jpg", "f1_2.png")}
    (test_item,) = iharmony4_items(sub, "test")
    assert test_item == Item(sub / "real_images/f9.jpg", "HFlickr/f9", sub / "masks/f9_1.png",
                             sub / "composite_images/f9_1_3.jpg")


def test_shipped_weights_match_the_manifest():
    manifest = json.loads((WEIGHTS / "MANIFEST.json").read_text())
    entries = [e for e in manifest["weights"] if e["architecture"]["class"].endswith("HarmonizerLiteNet")]
    assert entries, "the manifest lists the Harmonizer-Lite weights"
    for entry in entries:
        path = WEIGHTS / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert path.stat().st_size <= 50 * 2 ** 20
        arch = entry["architecture"]
        assert arch["class"] == f"{harmonizer_lite.__name__}.HarmonizerLiteNet"
        net = HarmonizerLiteNet(**arch["options"])
        load_strict(net, load_state_dict_file(path), "Harmonizer-Lite network", path)
        results = entry["evaluation"]["results"]
        assert results["none"]["fmse"] > results["model"]["fmse"] > 0  # the figures of a model that helps


def test_identity_samples_are_harmonious_and_their_arguments_are_pulled_to_zero(tmp_path, astronaut):
    items = collect([str(photo_folder(tmp_path / "p", astronaut, "train", 2))], "train")
    dataset = HarmonizationDataset(items, 64, train=True, length=40, identity_fraction=0.5)
    samples = [dataset[i] for i in range(40)]
    identity = [s for s in samples if s["identity"] == 1]
    assert 8 <= len(identity) <= 32 and all((s["args"] == 0).all() for s in identity)
    assert all((s["args"] != 0).any() for s in samples if s["identity"] == 0)
    torch.manual_seed(0)
    net = HarmonizerLiteNet()
    with torch.no_grad():
        for head in net.regressor.headers:
            head[1].bias.fill_(0.5)  # a biased network
    batch = {k: torch.stack([s[k] for s in identity[:4]]) for k in ("real", "mask", "args", "identity")}
    plain, _, bias = train.train_step(net, batch, torch.device("cpu"), identity_weight=0.0)
    pulled, _, _ = train.train_step(net, batch, torch.device("cpu"), identity_weight=1.0)
    assert (bias > 0.3).all()  # the bias on harmonious composites is what the history reports
    assert pulled.item() > plain.item() + 0.3  # and what the identity term penalises


def test_the_normaliser_floor_keeps_harmonious_samples_from_dominating():
    # a harmonious sample: every step's loss is the loss's √ε floor plus a tiny change
    harmonious = [torch.tensor([0.001]), torch.tensor([0.0015], requires_grad=True)]
    plain = dynamic_loss(harmonious)
    floored = dynamic_loss(harmonious, norm_floor=0.05)
    assert plain.item() == pytest.approx(1.0)  # scaled up to a whole unit of loss
    assert floored.item() == pytest.approx((0.001 + 0.0005) / 0.05)  # weighed like a typical sample
    typical = [torch.tensor([0.08]), torch.tensor([0.1])]
    assert dynamic_loss(typical, norm_floor=0.05).item() == pytest.approx(dynamic_loss(typical).item())
