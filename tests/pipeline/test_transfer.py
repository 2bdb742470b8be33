"""The frame's upload and its one asynchronous download (app.transfer)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.transfer import SLOTS, FrameTransfer
from models.ops.tensor_image import download, upload

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def pictures(n: int, shape=(36, 64, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def round_trip(device: str) -> None:
    transfer = FrameTransfer(device)
    images = pictures(SLOTS + 2)
    pending = [transfer.download(transfer.upload(rgb) * 0.5) for rgb in images[:SLOTS]]
    for rgb, p in zip(images, pending):
        out = p.result()
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        assert np.array_equal(out, download(upload(rgb, device) * 0.5))
        assert p.ready()


def test_a_download_is_the_rounded_output_and_each_of_the_last_slots_stays_readable():
    round_trip("cpu")


def test_the_buffers_are_used_in_turn_and_remade_for_a_new_size():
    transfer = FrameTransfer("cpu")
    first = [transfer.download(upload(rgb, "cpu")).result() for rgb in pictures(SLOTS)]
    again = transfer.download(upload(pictures(1)[0], "cpu")).result()
    assert again is first[0]  # the ring came round
    assert len({id(a) for a in first}) == SLOTS
    other = transfer.download(upload(pictures(1, (20, 30, 3))[0], "cpu")).result()
    assert other.shape == (20, 30, 3)


@pytest.mark.gpu
@needs_cuda
def test_on_cuda_the_download_lands_in_pinned_memory_and_matches_the_cpu():
    round_trip("cuda")
    transfer = FrameTransfer("cuda")
    transfer.download(upload(pictures(1)[0], "cuda")).result()
    assert all(host.is_pinned() for host, _ in transfer._slots)
