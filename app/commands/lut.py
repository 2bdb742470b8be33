"""``harmonicam lut``: export the smoothed Harmonizer filter chain as a 33³ .cube 3D LUT.

The harmonizer runs on the chosen source and background exactly as in ``run``
(file mode: deterministic); after the last frame its smoothed arguments, with
the temperature/contrast statistics of that frame, become the LUT that OBS,
DaVinci Resolve or Premiere can apply.
"""
from __future__ import annotations

import logging
from pathlib import Path

from app.commands.run import stage_choice
from app.errors import RuntimeFailure, UsageError
from app.sinks.base import NullSink
from app.sinks.paths import check_folder, write_failure
from app.sources import open_source
from app.stream import Stream
from models.frame import on_device
from models.harmonizers.harmonizer.filters import FILTER_ORDER
from models.harmonizers.harmonizer.lut_export import export_cube
from models.ops.tensor_image import download

log = logging.getLogger("harmonicam")


def lut_command(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".cube":
        raise UsageError(f"--out {out}: a 3D LUT file must end in .cube")
    if out.is_dir():
        raise UsageError(f"--out {out}: this is a folder; give a file name such as {out / 'look.cube'}")
    check_folder(out, "--out")
    choice = stage_choice(args, "harmonizer")
    last = {}
    source = open_source(args.source, args.resolution, loop=False, image_frames=args.frames)
    with Stream.build(source, choice, args.background, [NullSink()]) as stream:
        count = stream.run(args.frames, on_result=lambda r: last.update(result=r), live=False)
        pipeline = stream.pipeline
        arguments = pipeline.harmonizer.current_transform(pipeline.harmonizer_state)
        lift = pipeline.harmonizer.current_lift(pipeline.harmonizer_state)
    if not count or arguments is None:
        raise RuntimeFailure(f"{source.description} gave no frame to harmonize; pick another --source")
    composite = last["result"].composite.image
    composite = download(composite) if on_device(composite) else composite
    try:
        export_cube(arguments, out, composite, size=args.size, strength=choice.strength, lift=lift)
    except OSError as exc:
        raise write_failure(out, exc) from None
    log.info("wrote %s (%d³) from %d frames; filter arguments: %s; keep-bright lift: gain ×%.3f, offset %+.3f",
             out, args.size, count, ", ".join(f"{name} {v:+.3f}" for name, v in zip(FILTER_ORDER, arguments)),
             *lift)
    return 0
