"""``learned``: the blending U-Net's correction of linear blending, on the outline, at full resolution."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import registry
from models.blending.band import mixed_band
from models.blending.blend_net import BlendUNet, pad_to
from models.blending.learned import LearnedBlend, _full_box, outline_box, outline_box_mask
from models.frame import Frame
from models.matting.base import Matte
from models.ops.checkpoint import CheckpointError, save_safetensors
from models.ops.sizes import fit_long_side
from models.ops.tensor_image import alpha_tensor, download, upload
from models.stream import StreamState
from tests.blending.interior import linear_outside_the_band


def scene(w=400, h=240, seed=0):
    """A soft-edged disc over a textured frame, and a different complete background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((70 - np.hypot(xx - w / 2, yy - h / 2)) / 6 + 0.5, 0, 1).astype(np.float32)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    background = np.full((h, w, 3), (40, 160, 60), np.uint8)
    return rgb, alpha, background


def weights_with(tmp_path, bias=(0.0, 0.0, 0.0, 0.0), seed=None) -> str:
    """A network file: zero-initialised with this output bias (Δα, ΔF), or random when ``seed`` is set."""
    net = BlendUNet((8, 16, 32))
    if seed is not None:
        torch.manual_seed(seed)
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.05)
    else:
        with torch.no_grad():
            net.out.bias.copy_(torch.tensor(bias))
    path = tmp_path / "blend.safetensors"
    save_safetensors(net, path)
    return str(path)


def run(blend, rgb, alpha, background, tensor=False):
    state = StreamState(live=False)
    if tensor:
        frame = Frame(rgb, 0, 0.0, pixels=upload(rgb, "cpu"))
        out = blend.blend(frame, Matte(alpha_tensor(alpha, "cpu")), upload(background, "cpu"), state)
        return download(out.image), out.alpha[0, 0].numpy()
    out = blend.blend(Frame(rgb, 0, 0.0), Matte(alpha), background, state)
    return out.image, out.alpha


@pytest.mark.parametrize("tensor", [False, True])
def test_an_untrained_network_is_exactly_linear_blending(tmp_path, tensor):
    rgb, alpha, background = scene()
    learned = LearnedBlend(weights=weights_with(tmp_path))
    image, used = run(learned, rgb, alpha, background, tensor)
    want, want_alpha = run(registry.create("blend", "linear"), rgb, alpha, background, tensor)
    assert np.array_equal(used, want_alpha)
    assert np.abs(image.astype(int) - want.astype(int)).max() <= 1


def test_the_correction_reaches_only_the_mixed_band(tmp_path):
    rgb, alpha, background = scene()
    learned = LearnedBlend(weights=weights_with(tmp_path, bias=(-0.3, 0.0, 0.0, 0.0)))
    _, used = run(learned, rgb, alpha, background)
    changed = np.abs(used - alpha) > 1e-6
    band = mixed_band(alpha)
    ys, xs = np.nonzero(band & (alpha > 0.01))
    assert changed[ys, xs].all()  # the whole band took the correction…
    assert not changed[~band].any()  # …and nothing else moved (the rim's almost opaque inner edge included)
    assert np.allclose(used[ys, xs], np.clip(alpha[ys, xs] - 0.3, 0, 1), atol=0.02)


@pytest.mark.parametrize("tensor", [False, True])
def test_outside_the_mixed_band_the_camera_pixels_are_blended_linearly(tmp_path, tensor):
    """Neither correction reaches a face whose matte is a little below 1; the band still takes them."""
    learned = LearnedBlend(weights=weights_with(tmp_path, bias=(-0.2, 0.1, 0.1, 0.1)))
    image, linear, band = linear_outside_the_band(learned, tensor)
    assert (image[band] != linear[band]).any()


def test_host_and_device_paths_agree_for_a_real_correction(tmp_path):
    rgb, alpha, background = scene(seed=3)
    learned = LearnedBlend(weights=weights_with(tmp_path, seed=1))
    host, host_alpha = run(learned, rgb, alpha, background)
    device, device_alpha = run(learned, rgb, alpha, background, tensor=True)
    assert np.abs(host_alpha - device_alpha).mean() < 0.01
    assert np.abs(host.astype(int) - device.astype(int)).mean() < 1.5
    assert np.abs(host.astype(int) - run(registry.create("blend", "linear"), rgb, alpha, background)[0]).max() > 5


@pytest.mark.parametrize("tensor", [False, True])
def test_pixels_the_matte_excluded_keep_its_alpha(tmp_path, tensor):
    rgb, alpha, background = scene()
    learned = LearnedBlend(weights=weights_with(tmp_path, bias=(0.3, 0.0, 0.0, 0.0)))  # grows every α
    small = np.zeros((alpha.shape[0] // 2, alpha.shape[1] // 2), bool)  # at a working size, as the matte has it
    small[:, :100] = True  # the left half: decided to be the background's
    excluded = np.zeros(alpha.shape, bool)
    excluded[:, :200] = True
    matte = (Matte(alpha_tensor(alpha, "cpu"), excluded=torch.from_numpy(small)[None, None]) if tensor
             else Matte(alpha, excluded=small))
    state = StreamState(live=False)
    frame = Frame(rgb, 0, 0.0, pixels=upload(rgb, "cpu")) if tensor else Frame(rgb, 0, 0.0)
    out = learned.blend(frame, matte, upload(background, "cpu") if tensor else background, state)
    used = out.alpha[0, 0].numpy() if tensor else out.alpha
    assert np.array_equal(used[excluded], alpha[excluded])
    band = mixed_band(alpha) & ~excluded
    assert (used[band] > alpha[band]).all()  # elsewhere in the mixed band it still grew


def test_with_no_outline_in_view_it_blends_linearly(tmp_path):
    rgb, _, background = scene()
    learned = LearnedBlend(weights=weights_with(tmp_path, bias=(0.5, 0.1, 0.1, 0.1)))
    for alpha in (np.zeros(rgb.shape[:2], np.float32), np.ones(rgb.shape[:2], np.float32)):
        image, used = run(learned, rgb, alpha, background)
        assert np.array_equal(used, alpha)
        assert np.array_equal(image, rgb if alpha[0, 0] else background)


def test_outline_box_is_widened_and_clipped_to_the_frame():
    alpha = np.zeros((50, 80), np.float32)
    alpha[10:20, 30:40] = 0.5
    assert outline_box(alpha, margin=4) == (26, 6, 44, 24)
    assert outline_box(alpha, margin=40) == (0, 0, 80, 50)
    assert outline_box(np.ones((5, 5), np.float32)) is None


def test_pad_to_replicates_the_edge_to_a_multiple_of_four():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded = pad_to(x)
    assert padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[..., :2, :3], x) and torch.equal(padded[..., 3, :3], x[..., 1, :])


def test_weights_load_with_their_widths_and_bad_files_say_what_is_wrong(tmp_path):
    path = weights_with(tmp_path)
    assert BlendUNet.from_checkpoint(path).widths == (8, 16, 32)
    other = tmp_path / "other.safetensors"
    save_safetensors(torch.nn.Linear(2, 2), other)
    with pytest.raises(CheckpointError, match="blending network"):
        LearnedBlend(weights=other)
    with pytest.raises(ValueError, match="no weights"):
        registry.create("blend", "linear", weights=path)


def test_the_network_exports_its_correction_to_onnx(tmp_path):
    from models.ops.onnx_export import export_onnx

    (spec,) = LearnedBlend(weights=weights_with(tmp_path, seed=2)).onnx_specs()
    assert export_onnx(spec, tmp_path / "blend.onnx") < 1e-4


@pytest.mark.parametrize("full", [(320, 180), (1280, 720), (333, 201)])
def test_the_device_box_mask_is_the_host_box(full):
    rng = np.random.default_rng(5)
    size = fit_long_side(*full, 512)
    for _ in range(4):
        alpha = np.zeros(size[::-1], np.float32)
        x, y = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
        alpha[y:y + rng.integers(2, 60), x:x + rng.integers(2, 90)] = 0.5
        box = outline_box(alpha)
        X0, Y0, X1, Y1 = _full_box(box, size, full)
        want = np.zeros(full[::-1], bool)
        want[Y0:Y1, X0:X1] = True
        assert np.array_equal(outline_box_mask(torch.from_numpy(alpha)[None, None], full)[0, 0].numpy(), want)
    assert not outline_box_mask(torch.zeros(1, 1, *size[::-1]), full).any()
