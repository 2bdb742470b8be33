"""Export the current Harmonizer filter chain as a 3D LUT (.cube) for grading tools.

A 3D LUT maps each colour on its own, but two of the six filters read global
statistics of the whole frame: temperature uses the channel means and contrast
the mean of all pixels and channels, both after the previous filters. A LUT
cannot carry those, so they are frozen at the values of the frame the LUT is
exported from (``composite``): applied to other footage, the LUT repeats that
frame's correction instead of recomputing it. Without a frame, only arguments
that need no statistics (temperature and contrast zero) can be exported.

The LUT holds the filter chain followed by the keep-bright lift (the foreground
look, :mod:`models.harmonizers.keep_bright`); the matte blend is not part of it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from models.harmonizers.harmonizer import filters as F
from models.harmonizers.harmonizer.filter_apply import ChannelCurves, effective_args
from models.harmonizers.keep_bright import NO_LIFT, lift_affine
from models.harmonizers.realtime import toward
from models.ops.files import atomic_path


def cube_table(args: np.ndarray | torch.Tensor | list[float], composite: np.ndarray | None = None,
               size: int = 33, strength: float = 1.0, lift: np.ndarray = NO_LIFT) -> np.ndarray:
    """The chain, then the keep-bright ``lift`` (c, d), sampled on a size³ lattice: (size³, 3) float64, red
    varying fastest. ``strength`` scales the arguments and moves the lift from (1, 0) alike."""
    if size < 2:
        raise ValueError("a 3D LUT needs at least 2 points per axis")
    t, b, c, s, h, sh = (float(v) for v in effective_args(args, strength))
    if composite is None and (t or c):
        raise ValueError("temperature and contrast need the statistics of a frame: pass composite")
    # With temperature and contrast at zero no statistic is read, so any frame will do.
    stats_frame = composite if composite is not None else np.zeros((1, 1, 3), np.uint8)
    curves = ChannelCurves.from_frame(stats_frame, t, b, c)
    axis = torch.linspace(0, 1, size, dtype=torch.float64)
    blue, green, red = torch.meshgrid(axis, axis, axis, indexing="ij")
    out = curves(torch.stack((red, green, blue)).reshape(3, -1, 1))[None]
    for name, x in (("saturation", s), ("highlight", h), ("shadow", sh)):
        out = F.apply_filter(name, out, x)
    m = lift_affine(toward(NO_LIFT, lift, strength)).reshape(3, 4).astype(np.float64)
    return np.clip(out[0, :, :, 0].T.numpy() @ m[:, :3].T + m[:, 3], 0, 1)


def export_cube(args: np.ndarray | torch.Tensor | list[float], path: str | os.PathLike,
                composite: np.ndarray | None = None, size: int = 33, strength: float = 1.0,
                title: str = "Harmonicam harmonization", lift: np.ndarray = NO_LIFT) -> Path:
    """Write the chain with ``args`` (6 raw regressor outputs) and the keep-bright ``lift`` as a .cube file,
    atomically.

    ``composite`` (uint8 H×W×3 RGB) is the frame whose temperature and contrast
    statistics are frozen into the LUT. Format: Adobe/Resolve .cube, ``TITLE``,
    ``LUT_3D_SIZE``, ``DOMAIN_MIN``/``DOMAIN_MAX``, then size³ lines "R G B" with red
    varying fastest. The file is written to a temporary sibling and moved into place.
    """
    table = cube_table(args, composite, size, strength, lift)
    path = Path(path)
    header = (f'TITLE "{title.replace(chr(34), "")}"\n'
              f"LUT_3D_SIZE {size}\n"
              "DOMAIN_MIN 0.0 0.0 0.0\n"
              "DOMAIN_MAX 1.0 1.0 1.0\n")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write(header)
        np.savetxt(f, table, fmt="%.6f")
    return path
