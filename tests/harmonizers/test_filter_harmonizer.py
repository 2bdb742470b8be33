"""The Harmonizer as a pipeline stage: checkpoints, EMA'd arguments, full-resolution filters, LUT."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from app.cli import main
from app.imaging import cover_fit
from models import registry
from models.blending.base import Composite
from models.frame import Frame
from models.stream import StreamState
from models.harmonizers.harmonizer.filter_apply import FilterApplier
from models.harmonizers.harmonizer.stage import FilterHarmonizer
from models.harmonizers.harmonizer.network import HarmonizerNet
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet
from models.ops.compiled import alpha_spans
from models.ops.checkpoint import save_safetensors
from tests.conftest import write_image


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory):
    """A checkpoint in the official harmonizer.pth layout (random weights, fixed seed)."""
    torch.manual_seed(0)
    net = HarmonizerNet()
    with torch.no_grad():
        for head in net.regressor.headers:
            head[1].bias.uniform_(-0.3, 0.3)  # visible, non-zero arguments
    path = tmp_path_factory.mktemp("ckpt") / "harmonizer.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def lite_bg_weights(tmp_path_factory):
    torch.manual_seed(1)
    net = HarmonizerLiteNet(complete_background=True)
    path = tmp_path_factory.mktemp("ckpt") / "lite-bg.safetensors"
    save_safetensors(net, path)
    return path


def stream(size=(320, 180), n=4):
    rng = np.random.default_rng(3)
    rgb = rng.integers(40, 200, (size[1], size[0], 3), dtype=np.uint8)
    alpha = np.zeros((size[1], size[0]), np.float32)
    alpha[40:160, 100:220] = 1.0
    background = np.full_like(rgb, (30, 60, 200))
    return [(Frame(rgb, i, i / 30), Composite(rgb, alpha, rgb), background) for i in range(n)]


def test_official_checkpoint_runs_deterministically_on_files(official_pth):
    h = registry.create("harmonizer", "harmonizer", weights=official_pth)
    assert isinstance(h.network, HarmonizerNet)
    outputs = []
    for _ in range(2):
        state = StreamState(live=False)
        outputs.append([h.harmonize(c, b, f, state) for f, c, b in stream()])
        args = h.current_transform(state)
        state.close()
    np.testing.assert_array_equal(outputs[0][-1], outputs[1][-1])
    assert np.abs(outputs[0][0].astype(int) - stream()[0][0].rgb).max() > 0  # the first frame is harmonized
    # the output is exactly the fast filters with the tracked (EMA'd) arguments
    f, c, _ = stream()[-1]
    np.testing.assert_array_equal(outputs[0][-1], FilterApplier("cpu")(f.rgb, c.alpha, args))


def test_arguments_are_those_of_the_network_on_the_256_copy(official_pth):
    h = registry.create("harmonizer", "harmonizer", weights=official_pth)
    f, c, b = stream(n=1)[0]
    state = StreamState(live=False)
    h.harmonize(c, b, f, state)
    comp = torch.from_numpy(f.rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = h.network.predict_arguments(comp, torch.from_numpy(c.alpha)[None, None])[0].numpy()
    expected = np.clip(expected, -1, 1)  # the transform is the filters' clamped arguments
    np.testing.assert_allclose(h.current_transform(state), expected, atol=0.05)  # cv2 vs torch bilinear


def test_strength_is_applied_once_by_the_machinery(official_pth):
    full = registry.create("harmonizer", "harmonizer", weights=official_pth)
    half = registry.create("harmonizer", "harmonizer", weights=official_pth, strength=0.5)
    f, c, b = stream(n=1)[0]
    states = StreamState(live=False), StreamState(live=False)
    full.harmonize(c, b, f, states[0])
    out = half.harmonize(c, b, f, states[1])
    args = full.current_transform(states[0])
    np.testing.assert_array_equal(half.current_transform(states[1]), args)  # smoothed before strength
    np.testing.assert_array_equal(out, FilterApplier("cpu")(f.rgb, c.alpha, args * 0.5))


def test_strength_zero_is_the_composite(official_pth):
    h = registry.create("harmonizer", "harmonizer", weights=official_pth, strength=0.0)
    f, c, b = stream(n=1)[0]
    assert h.harmonize(c, b, f, StreamState(live=False)) is f.rgb


@pytest.mark.parametrize("keep_bright", [True, False])
def test_the_filters_work_the_row_spans_the_blend_found(official_pth, keep_bright):
    """A composite carrying α's row spans (the compiled blend's) is filtered on them: α is not scanned again."""
    h = registry.create("harmonizer", "harmonizer", weights=official_pth)
    h.keep_bright = keep_bright
    f, c, b = stream(n=1)[0]
    spans = alpha_spans(c.alpha)
    spans[100:] = 0  # as if the blend had found no person on these rows
    out = h.harmonize(replace(c, spans=spans), b, f, StreamState(live=False))
    assert (out[100:] == f.rgb[100:]).all() and (out[40:100] != f.rgb[40:100]).any()


def test_complete_background_variant_embeds_a_static_background_once(lite_bg_weights, monkeypatch):
    h = FilterHarmonizer(weights=lite_bg_weights)
    assert h.uses_background
    calls = []
    original = h.network.embed_background
    monkeypatch.setattr(h.network, "embed_background", lambda x: calls.append(1) or original(x))
    state = StreamState(live=False)
    frames = stream(n=8)
    for f, c, _ in frames:
        h.harmonize(c, frames[0][2], f, state)  # the same background array every frame
    assert len(calls) == 1 and h.current_transform(state) is not None
    # a new background drops the cached embedding but keeps the smoothed arguments (the look eases over)
    before = h.current_transform(state)
    h.background_changed(state)
    np.testing.assert_array_equal(h.current_transform(state), before)
    f, c, _ = frames[0]
    h.harmonize(c, np.full_like(frames[0][2], 250), Frame(f.rgb, 30, 1.0), state)  # a prediction is due
    assert len(calls) == 2


def test_live_streams_never_wait_for_the_network(official_pth):
    h = registry.create("harmonizer", "harmonizer", weights=official_pth)
    state = StreamState(live=True)
    f, c, b = stream(n=1)[0]
    first = h.harmonize(c, b, f, state)
    assert first is f.rgb  # no arguments yet: the composite passes through at once
    assert not h.ready(state)
    state.close()
    assert not any(t.name == "harmonizer-args" and t.is_alive() for t in threading.enumerate())


def test_wrong_weights_are_refused_in_one_sentence(tmp_path, astronaut):
    bad = tmp_path / "bad.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    src = write_image(tmp_path / "a.png", cover_fit(astronaut, (160, 90)))
    rc = main(["run", "--source", str(src), "--harmonizer", "harmonizer", "--harmonizer-weights", str(bad),
               "--output", str(tmp_path / "o.png")])
    assert rc == 1 and not (tmp_path / "o.png").exists()


def test_run_and_lut_with_the_harmonizer(tmp_path, astronaut, official_pth):
    src = write_image(tmp_path / "a.png", cover_fit(astronaut, (160, 90)))
    out = tmp_path / "o.png"
    assert main(["run", "--source", str(src), "--background", "#2040c0", "--harmonizer", "harmonizer",
                 "--harmonizer-weights", str(official_pth), "--output", str(out)]) == 0
    assert out.is_file()
    cube = tmp_path / "look.cube"
    assert main(["lut", "--source", str(src), "--background", "#2040c0", "--frames", "5",
                 "--harmonizer-weights", str(official_pth), "--out", str(cube), "--size", "9"]) == 0
    lines = cube.read_text().splitlines()
    assert "LUT_3D_SIZE 9" in lines and len([ln for ln in lines if ln[:1].isdigit()]) == 9 ** 3
    assert main(["lut", "--background", "#000000", "--out", str(tmp_path / "x.txt")]) == 2


def test_a_lut_the_disk_refuses_is_one_sentence(tmp_path, astronaut, monkeypatch, capsys):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("app.commands.lut.export_cube", full)
    src = write_image(tmp_path / "a.png", cover_fit(astronaut, (160, 90)))
    cube = tmp_path / "look.cube"
    assert main(["lut", "--source", str(src), "--background", "#2040c0", "--frames", "2",
                 "--out", str(cube), "--size", "2"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {cube} (No space left on device)" in err and "Traceback" not in err
