"""Connected regions of a mask on the device, without a host round trip.

OpenCV's connected components run on the host only, and a mask copied there stalls a GPU
pipeline until everything queued before it has run. Here each pixel points to a pixel of
its own region with a smaller index; every round each tree is hooked onto the smallest label
seen next to it and the pointers are shortened by pointer jumping, so a region of any shape
settles on its smallest pixel index in a number of rounds that grows with the logarithm of its
length. The number of rounds is fixed (the host never asks whether the labels settled), and
:data:`ROUNDS` settles every region of a working-size matte, including a spiral across the whole
map (tests/ops/test_components.py).

Per-region figures (area, peak, floor, whether it touches the border) are scatter reductions
indexed by label: the same numbers ``cv2.connectedComponentsWithStats`` gives, on the device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Hook-and-jump rounds (each also shortens every pointer path twice). A 320×180 serpentine, the longest
#: path a working map holds, settles in 8.
ROUNDS = 12
JUMPS = 2


def _neighbour_min(labels: Tensor, connectivity: int) -> Tensor:
    """The smallest label in each pixel's neighbourhood (itself included), 4 or 8 neighbours; float H×W
    labels (exact below 2²⁴), outside the map counts as no label."""
    negated = -labels[None, None]
    if connectivity == 8:
        return -F.max_pool2d(negated, 3, stride=1, padding=1)[0, 0]
    rows = F.max_pool2d(negated, (3, 1), stride=1, padding=(1, 0))
    cols = F.max_pool2d(negated, (1, 3), stride=1, padding=(0, 1))
    return -torch.maximum(rows, cols)[0, 0]


def label_regions(mask: Tensor, connectivity: int = 8, rounds: int = ROUNDS) -> Tensor:
    """Region labels of a bool H×W ``mask``: long H×W, each pixel of the mask labelled with the smallest flat
    index of its region, every other pixel with H·W (one past the last pixel)."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity is 4 or 8, not {connectivity}")
    h, w = mask.shape
    n = h * w
    if n >= 1 << 24:
        raise ValueError("label_regions works on working-size maps (under 2**24 pixels)")
    flat = mask.reshape(-1)
    outside = torch.full((1,), n, dtype=torch.long, device=mask.device)
    labels = torch.where(flat, torch.arange(n, device=mask.device), outside)
    for _ in range(rounds):
        seen = _neighbour_min(labels.view(h, w).float(), connectivity).reshape(-1).long()
        seen = torch.where(flat, seen, outside)
        # Hook: each pixel's tree root takes the smallest label next to any of its pixels.
        parents = torch.cat([labels, outside]).scatter_reduce_(0, labels, seen, "amin")
        for _ in range(JUMPS):
            parents = parents[parents]
        labels = parents[:n]
    return labels.view(h, w)


def region_sums(labels: Tensor, values: Tensor) -> Tensor:
    """Per label (index 0…H·W) the sum of ``values`` (H×W) over its pixels."""
    out = torch.zeros(labels.numel() + 1, dtype=values.dtype, device=values.device)
    return out.scatter_add_(0, labels.reshape(-1), values.reshape(-1))


def region_reduce(labels: Tensor, values: Tensor, how: str) -> Tensor:
    """Per label (index 0…H·W) the ``how`` ("amax" or "amin") of ``values`` (H×W) over its pixels;
    labels with no pixel hold the reduction's identity (−inf or +inf)."""
    start = float("-inf") if how == "amax" else float("inf")
    out = torch.full((labels.numel() + 1,), start, dtype=values.dtype, device=values.device)
    return out.scatter_reduce_(0, labels.reshape(-1), values.reshape(-1), how)


def touches_border(labels: Tensor) -> Tensor:
    """Per label: whether any pixel of the region lies on the map's border (bool)."""
    border = torch.ones_like(labels, dtype=torch.float32)
    border[1:-1, 1:-1] = 0
    return region_reduce(labels, border, "amax") > 0
