"""The device-resident path: frames as torch tensors from upload to download.

The tensor path runs on CPU tensors here (``resident=True``), so it is tested on
every machine; the tests marked ``gpu`` repeat the checks on CUDA.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.assemble import StageChoice
from app.backgrounds import SHIPPED_DIR
from app.pipeline import Pipeline
from app.stream import build_pipeline
from app.sources import open_source
from models.frame import Frame

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
SIZE = (320, 180)
BACKGROUNDS = [str(SHIPPED_DIR / "sunset-warm.jpg"), "blur:1", "#204060"]


def frames(n: int, size=SIZE):
    source = open_source("sample", size=size)
    try:
        return [source.read() for _ in range(n)]
    finally:
        source.close()


def outputs(pipeline: Pipeline, clip) -> list[np.ndarray]:
    pipeline.live = False  # deterministic predictions: both paths see the same arguments
    try:
        return [pipeline.process(f).output for f in clip]
    finally:
        pipeline.close()


def make(harmonizer: str, background: str, device: str = "cpu", resident: bool | None = None) -> Pipeline:
    p = build_pipeline(StageChoice(harmonizer=harmonizer, device=device), background, [], frame_locked=True)
    if resident is not None:
        p.resident = resident
    return p


@pytest.mark.parametrize("harmonizer", ["none", "harmonizer", "reinhard"])
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_tensor_path_matches_the_host_path(harmonizer, background):
    clip = frames(4)
    host = outputs(make(harmonizer, background, resident=False), clip)
    device = outputs(make(harmonizer, background, resident=True), clip)
    for a, b in zip(host, device):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape
        diff = np.abs(a.astype(int) - b)
        # resizes and roundings differ slightly; edges of the matte differ most
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8


def test_tensor_path_keeps_every_stage_on_the_tensor_side():
    p = make("harmonizer", "blur:1", resident=True)
    p.live = False
    result = p.process(frames(1)[0])
    p.close()
    assert isinstance(result.matte.alpha, torch.Tensor) and isinstance(result.background, torch.Tensor)
    assert isinstance(result.composite.image, torch.Tensor) and isinstance(result.output, np.ndarray)
    assert result.alpha.shape == (SIZE[1], SIZE[0]) and "transfer" in p.times.summary()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("harmonizer", ["none", "harmonizer", "reinhard"])
def test_cuda_matches_the_cpu(harmonizer):
    clip = frames(4, (1280, 720))
    cpu = outputs(make(harmonizer, BACKGROUNDS[0]), clip)
    cuda = outputs(make(harmonizer, BACKGROUNDS[0], device="cuda"), clip)
    for a, b in zip(cpu, cuda):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8


@pytest.mark.gpu
@needs_cuda
def test_cuda_steady_state_downloads_one_frame_and_does_not_grow():
    from torch.profiler import ProfilerActivity, profile

    clip = frames(30, (1280, 720))
    p = make("harmonizer", BACKGROUNDS[0], device="cuda")
    p.live = False
    for f in clip[:10]:  # warm up: caches, background upload, first predictions
        p.process(f)
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_allocated()
    # The same media time on every frame: no prediction is due, so only the frame loop is profiled.
    still = [Frame(f.rgb, f.index, clip[9].timestamp) for f in clip[10:20]]
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for f in still:
            p.process(f)
        torch.cuda.synchronize()
    downloads = [e for e in prof.events() if "Memcpy DtoH" in e.name]
    assert len(downloads) == len(still)  # exactly the one download of the output per frame
    for _ in range(300):
        p.process(clip[-1])
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= allocated * 1.05 + (1 << 20)
    p.close()
