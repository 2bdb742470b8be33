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
