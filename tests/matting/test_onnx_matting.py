"""User-supplied ONNX matting on real ONNX Runtime CPU sessions (tiny models from conftest)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from models import registry  # noqa: E402
from models.frame import Frame  # noqa: E402
from models.matting.base import MattingModelError  # noqa: E402
from models.matting.onnx_matting import (  # noqa: E402
    OnnxMatting,
    choose_downsample_ratio,
    modnet_size,
    onnx_providers,
    open_onnx_matting,
)


def frame(rgb: np.ndarray, index: int = 0) -> Frame:
    return Frame(rgb=rgb, index=index, timestamp=index / 30)


def grey(height: int, width: int, value: int, index: int = 0) -> Frame:
    return frame(np.full((height, width, 3), value, np.uint8), index)


def noise(height: int, width: int, seed: int = 0) -> Frame:
    return frame(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def rvm(tiny_rvm_onnx):
    m = OnnxMatting(tiny_rvm_onnx, threads=1)
    yield m
    m.close()


def test_rvm_detected_on_cpu_and_logged(tiny_rvm_onnx, caplog):
    with caplog.at_level(logging.INFO, logger="models.matting.onnx_matting"):
        m = OnnxMatting(tiny_rvm_onnx, threads=1)
    assert m.family == "rvm"
    assert m.provider == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in caplog.text


def test_rvm_alpha_and_foreground_match_the_frame(rvm):
    f = noise(90, 160)
    matte = rvm.matte(f)
    assert matte.alpha.shape == (90, 160) and matte.alpha.dtype == np.float32
    assert 0 <= matte.alpha.min() and matte.alpha.max() <= 1
    assert matte.foreground.shape == (90, 160, 3) and matte.foreground.dtype == np.uint8
    # The tiny model's fgr is 1 − src.
    assert np.abs(matte.foreground.astype(int) - (255 - f.rgb.astype(int))).max() <= 1


def test_rvm_states_are_fed_back_and_reset(rvm):
    c = 200 / 255
    first = rvm.matte(grey(90, 160, 200, 0)).alpha
    second = rvm.matte(grey(90, 160, 200, 1)).alpha
    np.testing.assert_allclose(first, 0.75 * c, atol=1e-4)
    np.testing.assert_allclose(second, 0.875 * c, atol=1e-4)
    rvm.reset()
    np.testing.assert_allclose(rvm.matte(grey(90, 160, 200, 2)).alpha, 0.75 * c, atol=1e-4)


def test_rvm_resolution_change_restarts_the_states(rvm):
    c = 100 / 255
    rvm.matte(grey(90, 160, 100))
    rvm.matte(grey(90, 160, 100, 1))
    # Stale states would fail to broadcast in onnxruntime; fresh ones give the first-frame value.
    matte = rvm.matte(grey(120, 64, 100, 2))
    assert matte.alpha.shape == (120, 64)
    np.testing.assert_allclose(matte.alpha, 0.75 * c, atol=1e-4)


def test_rvm_ratio_follows_the_resolution(rvm):
    rvm.matte(grey(720, 1280, 50))
    assert rvm.downsample_ratio == 0.375
    rvm.matte(grey(240, 320, 50, 1))
    assert rvm.downsample_ratio == 1.0


@pytest.mark.parametrize("size, ratio", [((1280, 720), 0.375), ((1920, 1080), 0.25),
                                         ((3840, 2160), 0.125), ((512, 512), 1.0),
                                         ((320, 192), 1.0), ((640, 480), 0.75)])
def test_choose_downsample_ratio(size, ratio):
    assert choose_downsample_ratio(*size) == ratio
    assert 256 <= max(size) * ratio <= 512 or ratio == 1.0


def test_rvm_fp16_model(tiny_rvm_fp16_onnx):
    m = OnnxMatting(tiny_rvm_fp16_onnx, threads=1)
    assert m.family == "rvm"
    c = 200 / 255
    first = m.matte(grey(90, 160, 200))
    second = m.matte(grey(90, 160, 200, 1))
    assert first.alpha.dtype == np.float32 and first.foreground.dtype == np.uint8
    np.testing.assert_allclose(first.alpha, 0.75 * c, atol=2e-3)
    np.testing.assert_allclose(second.alpha, 0.875 * c, atol=2e-3)
    assert np.abs(first.foreground.astype(int) - 55).max() <= 1


def test_rvm_renamed_fixed_size_export(tiny_rvm_fixed_onnx):
    m = OnnxMatting(tiny_rvm_fixed_onnx, threads=1)
    assert m.family == "rvm"
    c = 200 / 255
    first = m.matte(grey(120, 160, 200))  # resized to the export's 96×64 and back
    second = m.matte(grey(120, 160, 200, 1))
    assert first.alpha.shape == (120, 160) and first.foreground.shape == (120, 160, 3)
    np.testing.assert_allclose(first.alpha, 0.75 * c, atol=1e-4)
    np.testing.assert_allclose(second.alpha, 0.875 * c, atol=1e-4)
    assert m.downsample_ratio is None  # baked into the export


def test_modnet_normalises_to_minus_one_one(tiny_modnet_onnx):
    m = OnnxMatting(tiny_modnet_onnx, threads=1)
    assert m.family == "modnet" and m.provider == "CPUExecutionProvider"
    ramp = np.broadcast_to(np.linspace(0, 255, 200).astype(np.uint8)[None, :, None], (120, 200, 3))
    matte = m.matte(frame(np.ascontiguousarray(ramp)))  # runs at 832×512, not /32 at 200×120
    assert matte.foreground is None
    assert matte.alpha.shape == (120, 200) and matte.alpha.dtype == np.float32
    np.testing.assert_allclose(matte.alpha, ramp[..., 0] / 255, atol=0.02)


def test_tiny_modnet_rejects_sides_not_multiple_of_32(tiny_modnet_onnx):
    session = ort.InferenceSession(str(tiny_modnet_onnx), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):
        session.run(None, {"input": np.zeros((1, 3, 100, 100), np.float32)})


@pytest.mark.parametrize("size, expected", [((1280, 720), (896, 512)), ((720, 1280), (512, 896)),
                                            ((640, 480), (672, 512)), ((200, 120), (832, 512)),
                                            ((512, 512), (512, 512))])
def test_modnet_size(size, expected):
    assert modnet_size(*size) == expected


def test_classifier_is_refused(tiny_classifier_onnx):
    with pytest.raises(MattingModelError) as err:
        OnnxMatting(tiny_classifier_onnx)
    message = str(err.value)
    assert "is not an RVM or MODNet matting model" in message
    assert "inputs input [1, 3, 224, 224] float, outputs logits [1, 1000] float" in message
    assert "expected RVM" in message and "MODNet" in message


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(MattingModelError, match="is not a loadable ONNX model"):
        OnnxMatting(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(MattingModelError, match="does not exist"):
        OnnxMatting(tmp_path / "nope.onnx")


def test_registry_entry(tiny_modnet_onnx):
    entry = registry.entry("matting", "onnx")
    assert "needs --matting-model PATH" in entry.check()
    with pytest.raises(MattingModelError, match="needs --matting-model PATH"):
        registry.create("matting", "onnx")
    m = registry.create("matting", "onnx", model_path=str(tiny_modnet_onnx), threads=1)
    assert m.family == "modnet"
    assert open_onnx_matting is entry.factory


def test_onnx_providers_lists_cpu():
    assert "CPUExecutionProvider" in onnx_providers()


# --- The device path: ``frame.pixels`` is a torch tensor; run here on CPU tensors. ---

torch = pytest.importorskip("torch")


def device_frame(rgb: np.ndarray, index: int = 0, device: str = "cpu",
                 host_rgb: np.ndarray | None = None) -> Frame:
    """A device-path frame; ``host_rgb`` replaces ``rgb`` as the host copy (to show it is unread)."""
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).to(device)
    rgb = rgb if host_rgb is None else host_rgb
    return Frame(rgb=rgb, index=index, timestamp=index / 30, pixels=pixels)


def assert_constant(t: torch.Tensor, value: float) -> None:
    torch.testing.assert_close(t, torch.full_like(t, value), atol=1e-4, rtol=0)


def host(t: torch.Tensor) -> np.ndarray:
    """A 1×C×H×W tensor as H×W (C = 1) or H×W×C."""
    a = t[0].permute(1, 2, 0).cpu().numpy()
    return a[..., 0] if a.shape[-1] == 1 else a


# (model fixture, frame height, width, alpha atol, fgr atol in 1/255). Measured maxima of
# |tensor path − NumPy path| on uniform noise (the worst case for resizers): dynamic RVM
# fp32 0 / 0 (no resize); fp16 0 / 0.09; fixed 96×64 RVM from 120×160 0.0009 / 1.2;
# MODNet 200×120 up to 832×512 and back 0.0012; 1280×720 down to 896×512 and back 0.0018.
# The rest is the NumPy path resizing uint8 (rounding, ±0.5/255 ≈ 0.002) and fgr's uint8.
PARITY = [
    ("tiny_rvm_onnx", 90, 160, 1e-5, 0.51),
    ("tiny_rvm_fp16_onnx", 90, 160, 1e-3, 0.5),
    ("tiny_rvm_fixed_onnx", 120, 160, 0.003, 2),
    ("tiny_modnet_onnx", 120, 200, 0.003, None),
    ("tiny_modnet_onnx", 720, 1280, 0.003, None),
]


@pytest.mark.parametrize("model, height, width, atol, fgr_atol", PARITY,
                         ids=["rvm", "rvm-fp16", "rvm-fixed", "modnet-up", "modnet-down"])
def test_tensor_path_matches_numpy_path(request, model, height, width, atol, fgr_atol):
    path = request.getfixturevalue(model)
    cpu, dev = OnnxMatting(path, threads=1), OnnxMatting(path, threads=1)
    for index in range(2):  # the second RVM frame runs on fed-back states
        rgb = noise(height, width, index).rgb
        expected, matte = cpu.matte(frame(rgb, index)), dev.matte(device_frame(rgb, index))
        assert isinstance(matte.alpha, torch.Tensor)
        assert matte.alpha.shape == (1, 1, height, width) and matte.alpha.dtype == torch.float32
        assert matte.alpha.device.type == "cpu"
        assert 0 <= matte.alpha.min() and matte.alpha.max() <= 1
        np.testing.assert_allclose(host(matte.alpha), expected.alpha, atol=atol)
        if fgr_atol is None:
            assert matte.foreground is None
            continue
        assert matte.foreground.shape == (1, 3, height, width)
        assert matte.foreground.dtype == torch.float32 and matte.foreground.device.type == "cpu"
        assert 0 <= matte.foreground.min() and matte.foreground.max() <= 1
        np.testing.assert_allclose(host(matte.foreground) * 255, expected.foreground, atol=fgr_atol)
    assert dev.downsample_ratio == cpu.downsample_ratio


@pytest.mark.parametrize("model", ["tiny_rvm_onnx", "tiny_modnet_onnx"])
def test_tensor_path_reads_only_the_tensor_and_binds_io(request, model, monkeypatch):
    m = OnnxMatting(request.getfixturevalue(model), threads=1)

    def no_host_run(*args, **kwargs):
        raise AssertionError("the tensor path must run through IO binding, not session.run")

    monkeypatch.setattr(m._session, "run", no_host_run)
    rgb = noise(64, 96).rgb
    matte = m.matte(device_frame(rgb, host_rgb=np.zeros_like(rgb)))  # a wrong host copy, unread
    expected = OnnxMatting(request.getfixturevalue(model), threads=1).matte(frame(rgb))
    np.testing.assert_allclose(host(matte.alpha), expected.alpha, atol=0.003)


def test_tensor_path_feeds_rvm_states_back_and_resets(rvm):
    c = 200 / 255
    grey_rgb = np.full((90, 160, 3), 200, np.uint8)
    first = rvm.matte(device_frame(grey_rgb, 0))
    kept = first.alpha.clone()
    second = rvm.matte(device_frame(grey_rgb, 1))
    assert_constant(first.alpha, 0.75 * c)
    assert_constant(second.alpha, 0.875 * c)
    torch.testing.assert_close(first.alpha, kept, atol=0, rtol=0)  # not overwritten by frame 2
    assert not any(isinstance(s, np.ndarray) for s in rvm._states)  # bound, never host arrays
    rvm.reset()
    third = rvm.matte(device_frame(grey_rgb, 2))
    assert_constant(third.alpha, 0.75 * c)


def test_tensor_path_size_change_restarts_the_states(rvm):
    c = 100 / 255
    rvm.matte(device_frame(np.full((90, 160, 3), 100, np.uint8)))
    rvm.matte(device_frame(np.full((90, 160, 3), 100, np.uint8), 1))
    # Stale states would fail to broadcast in onnxruntime; fresh ones give the first-frame value.
    matte = rvm.matte(device_frame(np.full((120, 64, 3), 100, np.uint8), 2))
    assert matte.alpha.shape == (1, 1, 120, 64)
    assert_constant(matte.alpha, 0.75 * c)


def test_switching_paths_restarts_the_states(rvm):
    c = 200 / 255
    grey_rgb = np.full((90, 160, 3), 200, np.uint8)
    rvm.matte(frame(grey_rgb))
    after_host = rvm.matte(device_frame(grey_rgb, 1)).alpha
    after_device = rvm.matte(frame(grey_rgb, 2)).alpha
    assert_constant(after_host, 0.75 * c)
    np.testing.assert_allclose(after_device, 0.75 * c, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_frames_give_cuda_mattes(tiny_rvm_onnx, caplog):
    m = OnnxMatting(tiny_rvm_onnx, device="cuda")
    rgb = noise(90, 160).rgb
    expected = OnnxMatting(tiny_rvm_onnx, threads=1).matte(device_frame(rgb))
    with caplog.at_level(logging.INFO, logger="models.matting.onnx_matting"):
        mattes = [m.matte(device_frame(rgb, i, device="cuda")) for i in range(2)]
    for matte in mattes:
        assert matte.alpha.is_cuda and matte.foreground.is_cuda
        assert matte.alpha.shape == (1, 1, 90, 160) and matte.foreground.shape == (1, 3, 90, 160)
    torch.testing.assert_close(mattes[0].alpha.cpu(), expected.alpha, atol=1e-4, rtol=0)
    torch.testing.assert_close(mattes[0].foreground.cpu(), expected.foreground, atol=1e-4, rtol=0)
    assert not torch.equal(mattes[1].alpha, mattes[0].alpha)  # frame 2 ran on fed-back states
    copies = [r for r in caplog.records if "copied" in r.getMessage()]
    if m.provider == "CUDAExecutionProvider":
        assert not copies  # CUDA memory is bound as it is
        assert all(s.device_name().lower() == "cuda" for s in m._states)
    else:  # CPU-only onnxruntime: the working image goes through the host, said once
        assert len(copies) == 1 and copies[0].levelno == logging.INFO
