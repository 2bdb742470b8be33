"""``harmonicam bench --parts``: where a frame's CPU time goes, part by part, beside the plain row's.

The overlapped frame loop of the speed table hides what each part costs: its steps share the
cores, and the face and hand guards run inside the post-processing stage. Here every part of the CPU pipeline
runs one after the other on the same frames, interleaved frame by frame with the plain reference
(:mod:`app.commands.plain_reference`), and the process's CPU time — all its threads, since MediaPipe
runs its graphs on threads of its own — is charged to the part that ran. Harmonizer predictions run
in the frame that asks for them, as a file renders, so their cost is in ``harmonize``; the guards are
what the post-processing costs with them beyond what it costs without them.

The budget says what a ratio to plain leaves: at a ratio r on n cores a frame may take at most
n × (plain's wall time per frame) / r of CPU, and less by as much as the steps of the frame loop
fail to keep every core busy.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TypeVar

from app.assemble import StageChoice, make_blend, make_harmonizer, make_matting
from app.backgrounds import parse_background
from app.closing import close_all
from app.commands.plain_reference import PlainVirtualBackground
from app.sources import open_source
from app.timing import StageTimes
from models.matting.postprocess import MattePostprocess
from models.stream import StreamState

T = TypeVar("T")

#: The parts, in the order a frame goes through them.
PARTS = ("capture", "matting model", "post-processing", "face and hand guards", "background and blend",
         "harmonize")


def cpu_parts(source_spec: str, size: tuple[int, int], choice: StageChoice, background: str, frames: int,
              warmup: int) -> dict:
    """Mean CPU milliseconds per frame of each part (``PARTS``) of ``choice`` on the CPU, and the plain
    reference's CPU and wall milliseconds per frame, over ``frames`` frames after ``warmup``."""
    choice = replace(choice, device="cpu")
    closers = []

    def kept(stage: T) -> T:
        closers.append(stage.close)  # type: ignore[attr-defined]
        return stage

    try:
        source, plain_source = (kept(open_source(source_spec, size, loop=True)) for _ in range(2))
        picture, plain_picture = (kept(parse_background(background)) for _ in range(2))
        matting, blend = kept(make_matting(choice)), kept(make_blend(choice))
        harmonizer = kept(make_harmonizer(choice))
        guarded = kept(MattePostprocess(choice.matte))
        unguarded = kept(MattePostprocess(replace(choice.matte, faces=False, hands=False)))
        plain = kept(PlainVirtualBackground())
        blend_state, harmonizer_state = kept(StreamState(live=False)), kept(StreamState(live=False))
        spent = dict.fromkeys(PARTS, 0.0)
        plain_cpu = plain_wall = 0.0
        for i in range(warmup + frames):
            counted = i >= warmup
            t0, w0 = time.process_time(), time.perf_counter()
            plain(plain_source.read(), plain_picture, StageTimes())
            t1, w1 = time.process_time(), time.perf_counter()
            frame = source.read()
            t2 = time.process_time()
            raw = matting.coarse(frame)
            t3 = time.process_time()
            unguarded(frame, raw)
            t4 = time.process_time()
            matte = guarded(frame, raw)
            t5 = time.process_time()
            behind = picture.at(frame, matte.alpha)
            composite = blend.blend(frame, matte, behind, blend_state)
            t6 = time.process_time()
            harmonizer.harmonize(composite, behind, frame, harmonizer_state)
            t7 = time.process_time()
            if counted:
                plain_cpu, plain_wall = plain_cpu + t1 - t0, plain_wall + w1 - w0
                for part, seconds in zip(PARTS, (t2 - t1, t3 - t2, t4 - t3, (t5 - t4) - (t4 - t3), t6 - t5,
                                                 t7 - t6)):
                    spent[part] += seconds
    finally:
        close_all(reversed(closers), "the parts' stages")
    per_frame = {part: round(seconds / frames * 1e3, 2) for part, seconds in spent.items()}
    return {"resolution": f"{size[0]}x{size[1]}", "frames": frames, "cores": os.cpu_count() or 1,
            "parts_ms": per_frame, "total_ms": round(sum(per_frame.values()), 2),
            "plain_cpu_ms": round(plain_cpu / frames * 1e3, 2), "plain_wall_ms": round(plain_wall / frames * 1e3, 2)}


def cpu_budget_ms(row: dict, ratio: float) -> float:
    """The most CPU milliseconds a frame may take to run at ``ratio`` × the plain row's frame rate on the
    row's cores, were every core kept busy."""
    return row["cores"] * row["plain_wall_ms"] / ratio


def format_parts(row: dict, ratios: tuple[float, ...] = (0.6, 0.5)) -> str:
    """The row as lines: each part's CPU milliseconds per frame and share, the plain row's, the budgets."""
    total = row["total_ms"]
    width = max(len(p) for p in PARTS)
    lines = [f"CPU time per frame at {row['resolution']}, the parts run one after another ({row['frames']} frames; "
             "process CPU time, all threads):"]
    for part, ms in row["parts_ms"].items():
        lines.append(f"  {part.ljust(width)}  {ms:6.2f} ms  {ms / total if total else 0:4.0%}")
    lines.append(f"  {'all'.ljust(width)}  {total:6.2f} ms")
    lines.append(f"  plain row: {row['plain_cpu_ms']:.2f} ms of CPU, {row['plain_wall_ms']:.2f} ms of wall time")
    for ratio in ratios:
        lines.append(f"  at {ratio:g}× plain on {row['cores']} cores a frame may take at most "
                     f"{cpu_budget_ms(row, ratio):.1f} ms of CPU")
    return "\n".join(lines)
