"""The device-resident path: frames as torch tensors from upload to download.

The tensor path runs on CPU tensors here (``resident=True``), so it is tested on
every machine: each stage against its host twin, and for what would stall a GPU
(tests.pipeline.host_syncs watches every read of a "device" tensor by the host).
The tests marked ``gpu`` repeat the checks on CUDA.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from app.assemble import StageChoice
from app.backgrounds import SHIPPED_DIR
from app.pipeline import Pipeline
from app.stream import build_pipeline
from app.sources import open_source
from models.frame import Frame
from models.matting.postprocess import MatteOptions
from tests.pipeline.host_syncs import recording
from tests.pipeline.stage_parity import differences, run_stages, usable_matting

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
#: MediaPipe where it is installed, else its torch port (a GPU image has no mediapipe).
MATTING = usable_matting()
pytestmark = pytest.mark.skipif(MATTING is None, reason="no matting can run here")
SIZE = (320, 180)
BACKGROUNDS = [str(SHIPPED_DIR / "sunset-warm.jpg"), "blur:1", "#204060"]
#: Where a frame's output leaves the device: the pipeline's download, or app.transfer's once it is wired.
OUTPUT_DOWNLOADS = ("models/ops/tensor_image.py", "app/transfer.py")
#: Host reads that move pixels to the host (the others — .numpy() of what .cpu() returned, a wait on the
#: copy's event — belong to the same transfer).
TRANSFERS = ("cpu", "to(cpu)", "copy_ to host")


def frames(n: int, size=SIZE):
    source = open_source("sample", size=size)
    try:
        return [source.read() for _ in range(n)]
    finally:
        source.close()


def make(harmonizer: str, background: str, device: str = "cpu", resident: bool | None = None,
         blend: str = "linear", **choice) -> Pipeline:
    # torch runs the networks on both sides: the CUDA default, and the runtime the tensor path is written for
    p = build_pipeline(StageChoice(matting=MATTING, harmonizer=harmonizer, blend=blend, device=device,
                                   runtime="torch", **choice), background, [], frame_locked=True)
    if resident is not None:
        p.resident = resident
    return p


@pytest.mark.parametrize("harmonizer, blend, background", [
    ("none", "linear", BACKGROUNDS[2]), ("harmonizer", "linear", BACKGROUNDS[0]),
    ("reinhard", "defringe", BACKGROUNDS[1]), ("harmonizer", "learned", BACKGROUNDS[0])])
def test_each_stage_on_the_tensor_path_matches_the_same_stage_on_the_host_path(harmonizer, blend, background):
    clip = frames(4)
    host = run_stages(make(harmonizer, background, resident=False, blend=blend), clip)
    device = run_stages(make(harmonizer, background, resident=True, blend=blend), clip)
    diff = differences(host, device)
    # Resizes and roundings differ slightly, the mattes' edges most; the learned blend sees its whole
    # working copy on the tensor path and only the outline's box on the host (models.blending.learned).
    assert diff["matte"]["mean"] < 1.0 and diff["matte"]["p99"] <= 8, diff
    assert diff["background"]["mean"] < 0.5 and diff["background"]["p99"] <= 2, diff
    for stage in ("composite", "output"):
        assert diff[stage]["mean"] < 1.0 and diff[stage]["p99"] <= 8, diff


def test_tensor_path_keeps_every_stage_on_the_tensor_side():
    p = make("harmonizer", "blur:1", resident=True)
    p.live = False
    result = p.process(frames(1)[0])
    p.close()
    assert isinstance(result.matte.alpha, torch.Tensor) and isinstance(result.background, torch.Tensor)
    assert isinstance(result.composite.image, torch.Tensor) and isinstance(result.output, np.ndarray)
    assert result.alpha.shape == (SIZE[1], SIZE[0]) and "transfer" in p.times.summary()


def steady_frames(p: Pipeline, n: int = 2, warm_up: int = 5) -> list[Frame]:
    """Frames after a warm-up (caches, background upload, first predictions), all at the last warm-up's media
    time so that no prediction falls due: what every frame between two predictions does."""
    clip = frames(warm_up + n)
    for f in clip[:warm_up]:
        p.process(f)
    return [Frame(f.rgb, f.index, clip[warm_up - 1].timestamp) for f in clip[warm_up:]]


def host_reads_per_frame(monkeypatch, harmonizer: str, blend: str, **choice) -> list[list[tuple[str, str]]]:
    """For each steady frame of the tensor path (CPU tensors), every host read of a device tensor it made."""
    with recording(monkeypatch) as recorder:
        p = make(harmonizer, BACKGROUNDS[0], resident=True, blend=blend, **choice)
        p.live = False
        reads = []
        for frame in steady_frames(p):
            with recorder.watch() as calls:
                p.process(frame)
            reads.append(list(calls))
        p.close()
    return reads


@pytest.mark.parametrize("harmonizer, blend", [("harmonizer", "learned"), ("reinhard", "defringe"),
                                               ("adain", "linear")])
def test_a_device_frame_makes_one_transfer_and_no_other_host_sync(monkeypatch, harmonizer, blend):
    for calls in host_reads_per_frame(monkeypatch, harmonizer, blend):
        sites = {where.split(":")[0] for _, where in calls}
        assert len(sites) == 1 and sites <= set(OUTPUT_DOWNLOADS), f"host reads in a frame: {calls}"
        assert len([what for what, _ in calls if what in TRANSFERS]) == 1, calls


def test_the_host_read_counter_sees_a_stage_that_waits(monkeypatch):
    """The opt-in solidify decides on the host: the counter must see its working copy go there."""
    matte = replace(MatteOptions(), solidify=True)
    for calls in host_reads_per_frame(monkeypatch, "none", "linear", matte=matte):
        assert any(where.startswith("models/ops/tensor_image.py") and "alpha_array" in where
                   for _, where in calls), calls
        assert len([what for what, _ in calls if what in TRANSFERS]) == 2


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("harmonizer, blend", [("none", "linear"), ("harmonizer", "linear"),
                                               ("reinhard", "defringe"), ("harmonizer", "learned")])
def test_each_stage_on_cuda_matches_the_same_stage_on_cpu_tensors(harmonizer, blend):
    clip = frames(4, (1280, 720))
    cpu = run_stages(make(harmonizer, BACKGROUNDS[0], resident=True, blend=blend), clip)
    cuda = run_stages(make(harmonizer, BACKGROUNDS[0], device="cuda", blend=blend), clip)
    diff = differences(cpu, cuda)
    # The same code on both sides: only float rounding (TF32 and fused kernels on the GPU) differs.
    for stage, figures in diff.items():
        assert figures["mean"] < 0.5 and figures["p99"] <= 2, (stage, diff)


@pytest.mark.gpu
@needs_cuda
def test_cuda_steady_state_downloads_one_frame_and_does_not_grow():
    from torch.profiler import ProfilerActivity, profile

    p = make("harmonizer", BACKGROUNDS[0], device="cuda")
    p.live = False
    still = steady_frames(p, 10, warm_up=10)
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_allocated()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for f in still:
            p.process(f)
        torch.cuda.synchronize()
    downloads = [e for e in prof.events() if "Memcpy DtoH" in e.name]
    assert len(downloads) == len(still)  # exactly the one download of the output per frame
    for _ in range(300):
        p.process(still[-1])
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= allocated * 1.05 + (1 << 20)
    p.close()
