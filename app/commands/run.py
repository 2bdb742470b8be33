"""``harmonicam run``: a source through the pipeline into the virtual camera and/or files."""
from __future__ import annotations

import logging

from app.assemble import StageChoice, resolve_device, resolve_runtime
from app.errors import RuntimeFailure
from app.sinks import make_matte_sink, make_sink
from app.sources import open_source
from app.stream import Stream
from models.matting.postprocess import MatteOptions

log = logging.getLogger("harmonicam")


def stage_choice(args, harmonizer: str) -> StageChoice:
    device = resolve_device(args.device)
    return StageChoice(matting=args.matting, matting_model=args.matting_model, blend=args.blend,
                       blend_weights=args.blend_weights, harmonizer=harmonizer,
                       harmonizer_weights=getattr(args, "harmonizer_weights", None),
                       strength=args.strength, keep_bright=args.keep_bright, device=device,
                       matte=MatteOptions(smoothing_s=args.smoothing, refine=args.refine),
                       runtime=resolve_runtime(args.runtime, device))


def open_run_source(args, explicit_source: bool):
    """The chosen source; without ``--source`` and without a camera, the sample clip (said so)."""
    try:
        return open_source(args.source, args.resolution, args.fps, loop=args.loop or args.source == "sample",
                           image_frames=args.frames or 1)
    except RuntimeFailure:
        if explicit_source:
            raise
        log.info("no camera found: running on the built-in sample clip (pass --source to choose)")
        return open_source("sample", args.resolution, args.fps, loop=True)


def run_command(args, explicit_source: bool) -> int:
    outputs = args.output or ["vcam"]
    choice = stage_choice(args, args.harmonizer)
    sinks = [make_sink(o, args.vcam_backend, args.vcam_device) for o in outputs]
    matte = make_matte_sink(args.output_matte) if args.output_matte else None
    if matte is not None:
        sinks.append(matte)
        outputs = [*outputs, f"matte {args.output_matte}"]
    if args.preview:
        from app.sinks.preview import PreviewSink
        sinks.append(PreviewSink())
    # Called once for every result the outputs were sent, right after: the matte stays frame-aligned.
    on_result = (lambda result: matte.send_alpha(result.alpha)) if matte is not None else None
    with Stream.build(open_run_source(args, explicit_source), choice, args.background, sinks) as stream:
        log.info("%s → %s at %dx%d", stream.source.description, ", ".join(outputs), *stream.source.size)

        def run() -> int:
            return stream.run(args.frames, args.fps, on_result, always_on=args.always_on)

        if args.preview:
            from app.gui.preview_window import run_preview_window
            count = run_preview_window(sinks[-1], run, stream.stop)
        else:
            count = run()
    times = stream.pipeline.times
    stages = ", ".join(f"{k} {v['median']:.1f}" for k, v in times.summary().items())
    # A rate needs two frames; a single image reports its time instead of "0.0 FPS".
    rate = f"{times.fps():.1f} FPS" if count > 1 else f"{times.latency_ms[-1]:.0f} ms" if count else "nothing"
    log.info("%d frame(s), %s; median ms: %s", count, rate, stages)
    return 0
