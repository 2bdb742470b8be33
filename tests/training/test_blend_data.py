"""The blending network's data, loss, evaluation and training entry point."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from models.training.blend_data import (BlendTriplets, Foreground, compose, cutout, degrade, folder_foregrounds,
                                        hair_strands, trimap_from_mask)
from models.training.boundary import blend_loss, boundary_band, boundary_band_tensor
from models.training.evaluate_blend import band_metrics


def disc(size=128, radius=40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.clip(radius - np.hypot(xx - size / 2, yy - size / 2) + 0.5, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    return [cv2.resize(im, (256, 192), interpolation=cv2.INTER_AREA)
            for im in (skimage.data.coffee(), skimage.data.rocket(), skimage.data.chelsea())]


def test_compose_is_alpha_blending_rounded_once():
    fg, bg = np.full((2, 2, 3), 200, np.uint8), np.full((2, 2, 3), 100, np.uint8)
    alpha = np.array([[0, 0.25], [0.5, 1]], np.float32)
    assert compose(fg, alpha, bg)[..., 0].tolist() == [[100, 125], [150, 200]]


def test_trimap_marks_a_band_either_side_of_the_outline():
    trimap = trimap_from_mask(disc(), band=5)
    assert set(np.unique(trimap)) == {0.0, 0.5, 1.0}
    unknown = trimap == 0.5
    assert unknown[64, 64 - 40] and not unknown[64, 64] and not unknown[0, 0]
    assert 8 <= unknown[64].sum() / 2 <= 12  # about 2 × 5 px on each side of the disc


def test_degraded_matte_is_a_plausible_wrong_answer():
    alpha = disc(256, 90)
    core = disc(256, 60) == 1  # 30 px inside the outline
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(20):
        bad = degrade(alpha, rng)
        assert bad.dtype == np.float32 and bad.shape == alpha.shape and 0 <= bad.min() and bad.max() <= 1
        errors.append(np.abs(bad - alpha).mean())
        assert bad[core].mean() > 0.6 and bad[:20, :20].max() < 0.5  # wrong at the edge, not everywhere
    assert min(errors) > 0.001


def test_hair_grows_thin_partly_transparent_strands_outwards():
    alpha = disc(256, 60)
    haired = hair_strands(alpha, np.random.default_rng(1), 40)
    added = haired - alpha
    assert (added >= 0).all() and (added > 0.05).sum() > 100
    partial = (added > 0.02) & (added < 0.98)
    assert partial.sum() > 0.5 * (added > 0.02).sum()  # mostly sub-pixel strands
    ys, _ = np.nonzero(added > 0.05)
    assert np.median(ys) < 128  # on the upper outline


def test_hair_grows_on_a_shape_whose_outline_is_one_row():
    alpha = np.zeros((64, 64), np.float32)
    alpha[40:] = 1  # a band across the bottom: its outline is row 39 alone, none of it above the median
    haired = hair_strands(alpha, np.random.default_rng(0), 5)
    assert (haired >= alpha).all() and (haired > alpha).any()


def test_cutout_keeps_the_texture_and_softens_the_shape(photos):
    shape = np.zeros(photos[0].shape[:2], np.float32)
    shape[40:150, 60:200] = 1
    layer = cutout(photos[0], shape, np.random.default_rng(2))
    assert layer.rgb is photos[0] and not layer.person
    assert 0 < layer.alpha[40, 100] < 1 and layer.alpha[100, 120] == pytest.approx(1, abs=1e-3)


def test_triplets_are_consistent_and_reproducible(photos):
    train = BlendTriplets([], photos, train=True, length=4, crop=64, seed=3)
    s = train[0]
    assert {k: tuple(v.shape) for k, v in s.items()} == {
        "source": (3, 64, 64), "background": (3, 64, 64), "target": (3, 64, 64),
        "alpha": (1, 64, 64), "true_alpha": (1, 64, 64), "excluded": (1, 64, 64)}
    assert all(torch.equal(s[k], train[0][k]) for k in s)
    band = s["true_alpha"][0]
    assert ((band > 0.05) & (band < 0.95)).any()  # crops are taken around the outline
    opaque = s["true_alpha"][0] > 0.999
    assert torch.allclose(s["source"][:, opaque], s["target"][:, opaque], atol=1 / 255)
    held = BlendTriplets([], photos, train=False, length=2, seed=1)
    first = held[1]
    held.set_epoch(5)  # held-out samples never change with the epoch
    assert all(torch.equal(first[k], held[1][k]) for k in first)
    assert first["source"].shape[1:] == photos[0].shape[:2]


def test_people_are_used_and_their_matte_comes_from_the_model_when_given(photos):
    person = Foreground(photos[1], cv2.resize(disc(), (256, 192)), True)
    calls = []

    def matting(rgb):
        calls.append(rgb.shape)
        return np.zeros(rgb.shape[:2], np.float32)

    data = BlendTriplets([person], photos, train=False, length=12, cutout_share=0.0, matting=matting)
    zeros = sum(float(data[i]["alpha"].max()) == 0 for i in range(len(data)))
    assert calls and zeros == len(calls)


def test_a_matting_folder_is_read_by_matching_names(tmp_path, photos):
    (tmp_path / "fg").mkdir()
    (tmp_path / "alpha").mkdir()
    cv2.imwrite(str(tmp_path / "fg" / "a.jpg"), photos[0])
    cv2.imwrite(str(tmp_path / "alpha" / "a.png"), (cv2.resize(disc(), (256, 192)) * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "fg" / "orphan.jpg"), photos[1])
    (layer,) = folder_foregrounds(tmp_path)
    assert layer.alpha.shape == layer.rgb.shape[:2] and layer.alpha.max() == 1
    with pytest.raises(FileNotFoundError, match="fg/ and alpha/"):
        folder_foregrounds(tmp_path / "fg")


def test_the_boundary_band_surrounds_the_outline():
    alpha = disc(128, 40)
    band = boundary_band(alpha, radius=4)
    row = band[64]
    assert row[64 - 40] and not row[64] and not row[0]
    assert 7 <= row[:64].sum() <= 10
    tensor = boundary_band_tensor(torch.from_numpy(alpha)[None, None], 4)[0, 0].numpy() > 0
    assert (tensor & band).sum() >= 0.9 * band.sum()  # square vs round element: nearly the same band


def test_blend_loss_adds_the_band_term_of_eq_1():
    target = torch.zeros(1, 3, 8, 8)
    output = target.clone()
    band = torch.zeros(1, 1, 8, 8)
    band[..., 0, :] = 1
    assert blend_loss(output, target, band) == 0
    output[..., 0, :] = 1  # every band pixel off by 1: L1 = 1/8, band L1 = 1
    assert blend_loss(output, target, band, band_weight=2.0).item() == pytest.approx(1 / 8 + 2)


def test_band_metrics_score_only_the_band():
    target = np.zeros((20, 20, 3), np.uint8)
    output = target.copy()
    output[:, 10:] = 255
    band = np.zeros((20, 20), bool)
    band[:, :5] = True
    alpha = np.zeros((20, 20), np.float32)
    m = band_metrics(output, target, alpha, alpha, band)
    assert m["band_psnr"] > 100 and m["band_alpha_error"] == 0 and m["psnr"] < 10


def test_a_short_training_run_writes_weights_that_load_and_resumes(tmp_path, photos):
    from models.blending.blend_net import BlendUNet
    from models.training.train_blend import main

    data = tmp_path / "photos"
    data.mkdir()
    for i, im in enumerate(photos):
        cv2.imwrite(str(data / f"p{i}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    out, ckpt = tmp_path / "w.safetensors", tmp_path / "state.ckpt"
    args = ["--data", str(data), "--out", str(out), "--checkpoint", str(ckpt), "--widths", "4", "8", "8",
            "--crop", "32", "--batch-size", "2", "--epoch-steps", "1", "--no-people"]
    main(args + ["--steps", "1"])
    main(args + ["--steps", "2", "--resume"])
    net = BlendUNet.from_checkpoint(out)
    assert net.widths == (4, 8, 8)
    record = json.loads(__import__("safetensors").safe_open(str(out), "pt").metadata()["training"])
    assert [h["step"] for h in record["history"]] == [1, 2]
