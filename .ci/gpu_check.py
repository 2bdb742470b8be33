"""The checks that need a CUDA GPU, in one run that fits a short GPU window (see .ci/gpu-check).

Runs with whatever Python it is started with (on the GPU image: its own torch, nothing
downloaded) and writes two files: ``gpu-check.json`` (the environment, what was skipped and
why, the tests marked ``gpu``, each stage's CUDA-vs-CPU difference, the benchmark rows and the
issue's targets) and ``gpu-check.png`` (the benchmark's frame rates). ``--dry-run`` runs the
same steps on the CPU at smaller sizes, so the script itself is checked on a machine without a GPU.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The matting the check prefers: the torch port runs on the GPU (the default there); MediaPipe on the CPU only.
MATTING_PREFERENCE = ("selfie-torch", "mediapipe")
#: The default pair's sizes on the GPU, and the size every blend and harmonizer is measured at: (GPU run, dry run).
PAIR_SIZES = ["1280x720", "1920x1080", "3840x2160"]
ALL_SIZE = ("1920x1080", "320x180")
#: Frames per benchmark row (after the bench's own warm-up) and per parity clip: (GPU run, dry run).
BENCH_FRAMES = (150, 4)
PARITY = ((1280, 720), (320, 180))
PARITY_FRAMES = (4, 2)
#: The issue's targets at 1080p on the GPU.
TARGET_HARMONIZE_FPS, TARGET_PIPELINE_FPS = 500, 120


def log(text: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {text}", flush=True)


def environment(device: str) -> tuple[dict, list[str]]:
    """What this machine has, and a sentence for each missing piece the check works around."""
    import cv2
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "numpy": __import__("numpy").__version__,
           "opencv": cv2.__version__, "opencv_contrib": hasattr(cv2, "ximgproc"),
           "cuda": torch.cuda.is_available(), "device": device,
           "mediapipe": importlib.util.find_spec("mediapipe") is not None}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda_runtime"] = torch.version.cuda
    skipped = []
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
        env["onnxruntime_providers"] = onnxruntime.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in env["onnxruntime_providers"]:
            skipped.append("onnxruntime has no CUDA provider (the CPU build): the ONNX Runtime rows on cuda are "
                           "skipped; the networks run on torch")
    except ImportError:
        env["onnxruntime"] = None
        skipped.append("onnxruntime is not installed: the ONNX Runtime rows are skipped")
    if not env["opencv_contrib"]:
        skipped.append("OpenCV has no contrib modules: the opt-in solidify (background bars) cannot run; "
                       "its tests are not part of this check")
    if not env["mediapipe"]:
        skipped.append("mediapipe is not installed: the matting is the torch port of its selfie model when that "
                       "is available, and the face and hand guards are off")
    return env, skipped


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``cmd`` in the repository; one that runs past ``timeout`` is stopped and reported (exit code 124)."""
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr))
        return subprocess.CompletedProcess(cmd, 124, out, f"\nstopped after {timeout:.0f} s")


def gpu_test_files() -> list[str]:
    """The test files that hold tests marked ``gpu`` (collecting only those: the GUI's need PyQt6)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if "mark.gpu" in p.read_text(encoding="utf-8"))


def run_gpu_tests(work: Path, timeout: float) -> dict:
    files = gpu_test_files()
    report = work / "pytest.xml"
    t0 = time.perf_counter()
    proc = _run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                 f"--junitxml={report}", *files], timeout)
    result = {"files": files, "exit_code": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
              "passed": 0, "failed": 0, "skipped": 0, "failures": []}
    if report.is_file():
        for case in ElementTree.parse(report).iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                result["failed"] += 1
                result["failures"].append(name)
            elif case.find("skipped") is not None:
                result["skipped"] += 1
            else:
                result["passed"] += 1
    if proc.returncode not in (0, 5):  # 5: nothing selected
        result["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return result


def stage_parity(device: str, matting: str, dry_run: bool) -> dict:
    """Each stage's output on ``device`` against the same stages on CPU tensors (dry run: the host path against
    CPU tensors), for the default pair and the learned blend."""
    from app.assemble import StageChoice
    from app.stream import build_pipeline
    from app.sources import open_source
    from tests.pipeline.stage_parity import differences, run_stages

    size = PARITY[dry_run]
    source = open_source("sample", size=size)
    try:
        clip = [source.read() for _ in range(PARITY_FRAMES[dry_run])]
    finally:
        source.close()

    def pipeline(on: str, resident: bool, blend: str):
        choice = StageChoice(matting=matting, blend=blend, device=on, runtime="torch")
        p = build_pipeline(choice, "blur:1", [], frame_locked=True)
        p.resident = resident
        return p

    out = {}
    for blend in ("linear", "learned"):
        reference = run_stages(pipeline("cpu", not dry_run, blend), clip)
        checked = run_stages(pipeline(device, True, blend), clip)
        out[f"{blend} + harmonizer"] = differences(reference, checked)
    return {"compared": "host vs CPU tensors" if dry_run else "CPU tensors vs cuda",
            "resolution": f"{size[0]}x{size[1]}", "frames": len(clip), "stages": out}


def bench(device: str, matting: str, resolutions: list[str], blends: list[str], harmonizers: list[str],
          frames: int, runtimes: list[str], work: Path, name: str, timeout: float) -> dict:
    """One ``harmonicam bench`` run (its own CLI, its own JSON)."""
    path = work / f"{name}.json"
    cmd = [sys.executable, "-m", "app", "bench", "--devices", device, "--busy-cores", "0", "--frames", str(frames),
           "--matting", matting, "--runtimes", ",".join(runtimes), "--resolutions", ",".join(resolutions),
           "--blends", ",".join(blends), "--harmonizers", ",".join(harmonizers), "--json", str(path)]
    log(" ".join(cmd[1:]))
    proc = _run(cmd, timeout)
    if proc.returncode != 0 or not path.is_file():
        return {"exit_code": proc.returncode, "output_tail": (proc.stdout + proc.stderr)[-3000:]}
    return json.loads(path.read_text())


def targets(rows: list[dict]) -> dict:
    """The issue's 1080p targets against the default pair's row (None where it did not run)."""
    default = [r for r in rows if r["resolution"] == "1920x1080" and r["harmonizer"] == "harmonizer"
               and r["blend"] == "linear"]
    if not default:
        return {}
    harmonize_ms = default[0]["stages_ms"].get("harmonize", {}).get("median")
    return {"harmonize_fps": round(1000 / harmonize_ms, 1) if harmonize_ms else None,
            "harmonize_target_fps": TARGET_HARMONIZE_FPS,
            "pipeline_fps": default[0]["fps"], "pipeline_target_fps": TARGET_PIPELINE_FPS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, at small sizes")
    parser.add_argument("out", nargs="?", default=os.environ.get("OUT") or "gpu-check-out",
                        help="folder for gpu-check.json and gpu-check.png (default: $OUT, else ./gpu-check-out)")
    parser.add_argument("--budget", type=float, default=330.0, help="seconds the whole check may take")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: this torch sees no CUDA GPU; run it on a GPU machine, or use --dry-run here",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env, skipped = environment(device)
    log(f"environment: {env}")
    for line in skipped:
        log(f"skipped: {line}")
    from tests.pipeline.stage_parity import usable_matting

    matting = usable_matting(MATTING_PREFERENCE)
    report = {"mode": "dry run on the CPU" if args.dry_run else "cuda", "environment": env, "skipped": skipped,
              "matting": matting}

    def left() -> float:
        return args.budget - (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log("tests marked gpu")
        report["tests"] = run_gpu_tests(work, timeout=max(30.0, left() * 0.4))
        log(f"tests: {report['tests']['passed']} passed, {report['tests']['failed']} failed, "
            f"{report['tests']['skipped']} skipped")
        rows: list[dict] = []
        if matting is None:
            skipped.append("no matting can run here (no mediapipe, no converted selfie weights): the parity and "
                           "benchmark steps are skipped")
            log(f"skipped: {skipped[-1]}")
        else:
            log(f"per-stage parity with {matting}")
            report["parity"] = stage_parity(device, matting, args.dry_run)
            # ONNX Runtime rows only where it has the GPU provider (on the CPU they are the CPU bench's business).
            runtimes = ["torch"] + (["onnxruntime"] if "CUDAExecutionProvider" in env.get("onnxruntime_providers", [])
                                    else [])
            frames = BENCH_FRAMES[args.dry_run]
            from models import registry

            report["bench"] = {}
            every = ("every blend and harmonizer", [ALL_SIZE[args.dry_run]], ["linear", "learned"],
                     registry.usable("harmonizer"), ["torch"])
            # The dry run measures both at one small size: one bench run (a run's start-up is most of its time).
            runs = [every] if args.dry_run else [
                ("default pair", PAIR_SIZES, ["linear"], ["harmonizer"], runtimes), every]
            for name, sizes, blends, harmonizers, run_runtimes in runs:
                if left() < 20:
                    skipped.append(f"bench of the {name}: out of time")
                    continue
                result = bench(device, matting, sizes, blends, harmonizers, frames, run_runtimes, work,
                               name.replace(" ", "-"), timeout=left())
                report["bench"][name] = result
                rows += result.get("results", [])
            report["targets"] = targets(rows) if not args.dry_run else {}
        if rows:
            from app.commands.bench_plot import plot_results

            plot_results(rows, out / "gpu-check.png")
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2))
    failed = report["tests"]["failed"] or report["tests"]["exit_code"] not in (0, 5) or any(
        "exit_code" in r for r in report.get("bench", {}).values())
    log(f"wrote {out / 'gpu-check.json'} in {report['seconds']} s; {'FAILED' if failed else 'passed'}")
    if report.get("targets"):
        log(f"1080p targets: {report['targets']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
