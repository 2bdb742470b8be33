"""The ``harmonicam`` command line: run, devices, bench, lut (and the GUI with no subcommand).

Global options (``--debug``, ``--version``) work anywhere on the command line.
Every option is checked before any work starts: a bad value ends in one sentence
with exit code 2. SIGTERM and SIGHUP stop a run as Ctrl+C does (outputs closed,
partial files removed) with exit code 128 + the signal number.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from pathlib import Path

from app.errors import HarmonicamError, UsageError
from app.signals import Terminated, exit_code, signal_name, terminate_on_signals
from models import registry
from models.matting import DEFAULT_MATTING
from models.matting.postprocess import MatteOptions
from models.ops.arguments import number_text, output_file, ranged

log = logging.getLogger("harmonicam")

GLOBAL_FLAGS = ("--debug", "--version")

#: Upper bounds of the counts and rates, so a typo cannot ask for days of work or petabytes.
MAX_RUN_FRAMES = 1_000_000      # over 9 hours at 30 FPS; leave --frames out to run until stopped
MAX_LUT_FRAMES = 10_000
MAX_BENCH_FRAMES = 100_000
LUT_SIZES = (2, 129)
FPS_RANGE = (1.0, 240.0)
STRENGTH_RANGE = (0.0, 1.0)
SMOOTHING_RANGE = (0.0, 2.0)    # seconds; the window's slider goes to 0.5
DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("torch", "onnxruntime")  # models.ops.onnx_runtime.RUNTIMES, without importing torch here
RUNTIME_HELP = ("what runs the learned networks (harmonizer, learned blend): auto (default: onnxruntime on a CPU "
                "where it is installed, torch on a GPU), torch or onnxruntime (each network exported once to the "
                "cache folder; on a GPU the TensorRT or CUDA provider)")


def version() -> str:
    """The installed package's version, else the one in pyproject.toml beside the sources."""
    from importlib import metadata

    try:
        return metadata.version("harmonicam")
    except metadata.PackageNotFoundError:
        pass
    try:
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    project = ("\n" + text).split("\n[project]", 1)[-1].split("\n[", 1)[0]
    match = re.search(r"""^version\s*=\s*["']([^"']+)["']""", project, re.MULTILINE)
    return match.group(1) if match else "unknown"


def global_flags(argv: list[str]) -> set[str]:
    """The global flags anywhere in ``argv`` (before a ``--``), before the parser runs."""
    found = set()
    for token in argv:
        if token == "--":
            break
        if token in GLOBAL_FLAGS:
            found.add(token)
    return found


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text} is out of range; use a size from 16x16 to 7680x4320")
    return w, h


def resolution_list(text: str) -> list[tuple[int, int]]:
    return [parse_resolution(v.strip()) for v in text.split(",")]


def busy_core_list(text: str) -> list[int]:
    cores = os.cpu_count() or 1
    hint = f"use whole numbers from 0 to {cores} (the cores of this machine), comma-separated, e.g. 0,1"
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers; {hint}") from None
    if not all(0 <= v <= cores for v in values):
        raise argparse.ArgumentTypeError(f"{text} is out of range; {hint}")
    return values


def device_list(text: str) -> list[str]:
    devices = text.split(",")
    if not all(d in DEVICES for d in devices):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {', '.join(DEVICES)}, "
                                         "e.g. cpu,cuda")
    return devices


def runtime_list(text: str) -> list[str]:
    runtimes = text.split(",")
    if not all(r in ("auto", *RUNTIMES) for r in runtimes):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of auto, {', '.join(RUNTIMES)}, "
                                         "e.g. torch,onnxruntime")
    return runtimes


json_path = output_file("bench.json")


class Parser(argparse.ArgumentParser):
    """No abbreviated options: ``lut --harmonizer reinhard`` would otherwise be read as ``--harmonizer-weights``
    and fail on a weights file named reinhard, far from the typo."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):  # one sentence, exit 2, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_keep_bright(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-bright", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the person bright: harmonization darkens them only part of the way to a darker "
                   "background, never by more than a quarter, and keeps 90 %% of their contrast (default on; "
                   "--no-keep-bright lets the harmonizer go as far as it likes)")


def matting_help() -> str:
    return f"matting backend: {', '.join(registry.names('matting'))} (default {DEFAULT_MATTING})"


MATTING_MODEL_HELP = ("model file for the matting backend (a selfie .tflite for the mediapipe backends, "
                      ".safetensors or .tflite for selfie-torch, RVM/MODNet .onnx for onnx)")


def add_stage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matting", default=DEFAULT_MATTING, metavar="NAME", help=matting_help())
    p.add_argument("--matting-model", metavar="PATH", help=MATTING_MODEL_HELP)
    p.add_argument("--blend", default="auto", metavar="NAME",
                   help="blending: auto, " + ", ".join(registry.names("blend")) + " (default auto: the blend "
                   "that wins on held-out real footage on the device, today linear everywhere)")
    p.add_argument("--blend-weights", metavar="PATH", help="checkpoint for a learned blend")
    p.add_argument("--harmonizer-weights", metavar="PATH",
                   help="checkpoint for the harmonizer (ours .safetensors or an official .pth)")
    p.add_argument("--strength", type=ranged(*STRENGTH_RANGE), default=1.0, metavar="0..1",
                   help="harmonization strength from 0 (off) to 1 (default 1)")
    add_keep_bright(p)
    p.add_argument("--smoothing", type=ranged(*SMOOTHING_RANGE), default=MatteOptions.smoothing_s, metavar="SECONDS",
                   help="time constant of the alpha smoothing where the picture is still (it follows motion at "
                        f"once), 0 to 2 seconds; 0 turns it off (default {MatteOptions.smoothing_s:g})")
    p.add_argument("--refine", action="store_true",
                   help="align the matte's edge with the frame's colours (colour-guided filter; off by default: "
                        "on real footage it lowered the outline's accuracy)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where the networks run: auto, cpu or cuda "
                   "(default auto: cuda when present)")
    p.add_argument("--runtime", default="auto", choices=("auto", *RUNTIMES), help=RUNTIME_HELP)


def global_options() -> argparse.ArgumentParser:
    """--debug and --version, added to the main parser and to every subcommand, so they work anywhere."""
    p = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand that was not given --debug must not reset the main parser's value.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks and debug logs (console and log file)")
    p.add_argument("--version", action="version", version=f"harmonicam {version()}",
                   help="print the version and exit")
    return p


def build_parser() -> Parser:
    from app.logs import log_path

    common = global_options()
    parser = Parser(prog="harmonicam", parents=[common], description="Real-time background replacement with "
                    "colour harmonization, published as a virtual webcam. Without a subcommand it opens the window.",
                    epilog=f"The log is written to {log_path()}.")
    parser.set_defaults(debug=False)
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    def add(name: str, help: str) -> Parser:
        return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".", parents=[common])

    run = add("run", "process a camera, video or image into the virtual camera and/or files")
    run.add_argument("--source", default="0", help="camera index, /dev/videoN, video or image path, or 'sample' "
                     "(default 0; falls back to sample when no camera exists and --source is not given)")
    run.add_argument("--background", default="blur", help="image or video path, blur[:strength] or #rrggbb "
                     "(default blur)")
    run.add_argument("--harmonizer", default="harmonizer", metavar="NAME",
                     help="harmonizer: " + ", ".join(registry.names("harmonizer")) + " (default harmonizer)")
    add_stage_options(run)
    run.add_argument("--resolution", type=parse_resolution, metavar="WxH",
                     help="frame size from 16x16 to 7680x4320 (default: the file's own; 1280x720 for cameras)")
    run.add_argument("--fps", type=ranged(*FPS_RANGE), metavar="N",
                     help=f"frame-rate cap, {number_text(FPS_RANGE[0])} to {number_text(FPS_RANGE[1])}")
    run.add_argument("--output", action="append", metavar="vcam|PATH",
                     help="'vcam' for the virtual camera or an output file (.mp4, .avi, .png); repeatable "
                     "(default vcam)")
    run.add_argument("--output-matte", metavar="PATH",
                     help="also write the final alpha as 8-bit grey, one frame per output frame: a video (.mp4, "
                     ".avi, .mkv) or a PNG sequence named with a frame number, e.g. matte_%%05d.png")
    run.add_argument("--vcam-backend", metavar="NAME", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    run.add_argument("--vcam-device", metavar="DEV", help="virtual camera device, e.g. /dev/video10")
    run.add_argument("--frames", type=ranged(1, MAX_RUN_FRAMES, whole=True), metavar="N",
                     help=f"stop after N frames, 1 to {MAX_RUN_FRAMES} (default: until the source ends or "
                     "Ctrl+C)")
    run.add_argument("--loop", action="store_true", help="loop a video source")
    run.add_argument("--preview", action="store_true", help="show the output in a window")
    run.add_argument("--always-on", action="store_true",
                     help="keep processing while no app reads the virtual camera (default: pause until one does)")

    add("devices", "list cameras, virtual-camera backends, torch and ONNX Runtime devices")

    cores = os.cpu_count() or 1
    bench = add("bench", "measure per-stage and end-to-end speed")
    bench.add_argument("--source", default="sample", help="video source (default: the sample clip)")
    bench.add_argument("--resolutions", type=resolution_list, default=[(1280, 720), (1920, 1080), (3840, 2160)],
                       metavar="WxH[,WxH]", help="frame sizes to measure, each from 16x16 to 7680x4320 "
                       "(default 1280x720,1920x1080,3840x2160)")
    bench.add_argument("--devices", type=device_list, metavar="cpu[,cuda]",
                       help="where the networks run (default: cpu, plus cuda when present)")
    bench.add_argument("--runtimes", type=runtime_list, default=["auto"], metavar="torch[,onnxruntime]",
                       help="what runs the learned networks, each measured in its own rows (default auto: "
                            "onnxruntime on a CPU, torch on a GPU)")
    bench.add_argument("--harmonizers", type=lambda s: s.split(","), metavar="NAME[,NAME]",
                       help="harmonizers to measure (default: every usable one: "
                       + ", ".join(registry.names("harmonizer")) + ")")
    bench.add_argument("--matting", default=DEFAULT_MATTING, metavar="NAME", help=matting_help())
    bench.add_argument("--matting-model", metavar="PATH", help=MATTING_MODEL_HELP)
    bench.add_argument("--blends", type=lambda s: s.split(","), default=["auto"], metavar="NAME[,NAME]",
                       help="blends to measure: auto, " + ", ".join(registry.names("blend"))
                       + " (default auto: the device's default blend)")
    bench.add_argument("--busy-cores", type=busy_core_list, default=[0, 1], metavar="N[,N]",
                       help=f"also measure while N other processes each keep a core busy, as a video-call app "
                       f"does; each N from 0 to {cores} (default 0,1: idle and one core busy)")
    bench.add_argument("--frames", type=ranged(1, MAX_BENCH_FRAMES, whole=True), default=120, metavar="N",
                       help=f"timed frames per row, 1 to {MAX_BENCH_FRAMES} (default 120)")
    bench.add_argument("--json", type=json_path, metavar="PATH", help="also write the results as JSON")
    bench.add_argument("--plot", type=output_file("bench.png", (".png", ".svg", ".pdf")), metavar="PATH.png",
                       help="also draw end-to-end FPS per row, idle and busy side by side, as a chart")
    bench.add_argument("--parts", action="store_true",
                       help="instead of the speed table, the CPU time per frame of each part of the pipeline (capture, "
                       "model, post-processing, face and hand guards, blend, harmonize), run one after another beside "
                       "the plain row, idle, and what a ratio to plain leaves (--busy-cores does not apply)")
    bench.add_argument("--soak", type=ranged(0.05, 24 * 60), metavar="MINUTES",
                       help="instead of the speed table, run this long (up to a day) while switching backgrounds "
                       "and harmonizers every few seconds; report memory, threads and frame time at start and end")

    export = add("export-onnx", "write one validated .onnx file per learned network in the registry")
    export.add_argument("--out", required=True, metavar="FOLDER", help="folder for the .onnx files (created)")
    export.add_argument("--harmonizer-weights", metavar="PATH",
                        help="export these Harmonizer weights instead of the shipped ones")
    export.add_argument("--opset", type=ranged(13, 20, whole=True), default=17, metavar="N",
                        help="ONNX opset, 13 to 20 (default 17)")

    harmonize = add("harmonize", "harmonize still composites (a file or a folder) with any registered harmonizer")
    harmonize.add_argument("--harmonizer", default="harmonizer", metavar="NAME",
                           help="harmonizer: " + ", ".join(registry.names("harmonizer")) + " (default harmonizer)")
    harmonize.add_argument("--harmonizer-weights", metavar="PATH",
                           help="checkpoint for the harmonizer (ours .safetensors or an official .pth)")
    harmonize.add_argument("--composite", required=True, metavar="FILE|FOLDER",
                           help="the composite image, or a folder of them")
    harmonize.add_argument("--mask", required=True, metavar="FILE|FOLDER",
                           help="8-bit grayscale mask (255 = person, soft values allowed), or a folder of masks "
                           "named like the composites")
    harmonize.add_argument("--background", metavar="FILE|FOLDER",
                           help="the complete background behind the person, same size (used by harmonizers that "
                           "need it), or a folder of them")
    harmonize.add_argument("--out", required=True, metavar="FILE|FOLDER",
                           help="where to write the result (a folder for folder inputs: one PNG per composite)")
    harmonize.add_argument("--strength", type=ranged(*STRENGTH_RANGE), default=1.0, metavar="0..1",
                           help="harmonization strength from 0 (off) to 1 (default 1)")
    add_keep_bright(harmonize)
    harmonize.add_argument("--device", default="auto", choices=DEVICES,
                           help="where the network runs: auto, cpu or cuda (default auto)")
    harmonize.add_argument("--runtime", default="auto", choices=("auto", *RUNTIMES), help=RUNTIME_HELP)

    lut = add("lut", "export the harmonization of a source over a background as a .cube 3D LUT")
    lut.add_argument("--source", default="sample", help="video, image or 'sample' (default sample)")
    lut.add_argument("--background", required=True, help="image or video path, blur[:strength] or #rrggbb")
    lut.add_argument("--out", required=True, metavar="PATH.cube", help="where to write the LUT")
    lut.add_argument("--frames", type=ranged(1, MAX_LUT_FRAMES, whole=True), default=60, metavar="N",
                     help=f"frames to run before exporting, so the smoothing settles, 1 to {MAX_LUT_FRAMES} "
                     "(default 60)")
    lut.add_argument("--size", type=ranged(*LUT_SIZES, whole=True), default=33, metavar="N",
                     help=f"lattice points per axis, {LUT_SIZES[0]} to {LUT_SIZES[1]} (default 33)")
    lut.add_argument("--resolution", type=parse_resolution, metavar="WxH",
                     help="frame size from 16x16 to 7680x4320 (default: the source's own)")
    add_stage_options(lut)

    gui = add("gui", "open the window")
    gui.add_argument("--screenshot", metavar="PATH", help="render the window offscreen on the sample clip to "
                     "this PNG file and exit (no display needed)")
    return parser


#: OpenCV's log level when this process started, so --debug can bring it back.
_opencv_default_level: list[int] = []


def quiet_opencv(debug: bool) -> None:
    """Keep OpenCV's C++ messages (about ten lines when a camera index does not exist) off the console.

    Our own sentence says what went wrong; ``--debug`` shows OpenCV's lines again.
    An OPENCV_LOG_LEVEL the user set is left alone. The level is set through OpenCV's
    API, not the environment, so it also works when cv2 was imported earlier and
    does not leak into child processes.
    """
    if "OPENCV_LOG_LEVEL" in os.environ:
        return
    import cv2

    api = cv2.utils.logging
    if not _opencv_default_level:
        _opencv_default_level.append(api.getLogLevel())
    api.setLogLevel(_opencv_default_level[0] if debug else api.LOG_LEVEL_SILENT)


def setup_logging(debug: bool) -> None:
    from app.logs import setup_logging as setup_log_handlers

    setup_log_handlers(debug)
    if not debug:
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO/WARNING lines
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    flags = global_flags(argv)
    if "--version" in flags:  # at once, without loading the models for the parser
        print(f"harmonicam {version()}")
        return 0
    debug = "--debug" in flags
    setup_logging(debug)
    quiet_opencv(debug)
    from app.logs import FILE_ONLY

    log.info("harmonicam %s: %s", version(), " ".join(["harmonicam", *argv]), extra=FILE_ONLY)
    with terminate_on_signals():
        return _run(argv, debug)


def _run(argv: list[str], debug: bool) -> int:
    from app.install_check import check_onnxruntime_install
    from app.logs import FILE_ONLY
    from models.ops.allocator import keep_freed_memory
    from models.ops.threads import apply_thread_budget

    try:
        apply_thread_budget()
        keep_freed_memory()
        args = build_parser().parse_args(argv)
        check_onnxruntime_install()
        if args.command == "run":
            from app.commands.run import run_command
            if not args.preview:
                return run_command(args, explicit_source="--source" in argv)
            prepare_window()
            from app.gui.launch import close_windows_on_signals
            with close_windows_on_signals() as received:
                code = run_command(args, explicit_source="--source" in argv)
            if received:
                log.info("preview closed by %s", signal_name(received[0]))
                return exit_code(received[0])
            return code
        if args.command == "devices":
            from app.commands.devices import devices_command
            return devices_command()
        if args.command == "lut":
            from app.commands.lut import lut_command
            return lut_command(args)
        if args.command == "bench":
            from app.commands.bench import bench_command
            return bench_command(args)
        if args.command == "export-onnx":
            from app.commands.export_onnx import export_command
            return export_command(args)
        if args.command == "harmonize":
            from app.commands.harmonize import harmonize_command
            return harmonize_command(args)
        return open_gui(args)
    except HarmonicamError as exc:
        log.error("error: %s", exc, exc_info=not isinstance(exc, UsageError), extra=FILE_ONLY)
        if debug:
            raise
        print(f"harmonicam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        log.info("stopped by SIGINT", extra=FILE_ONLY)
        return exit_code(signal.SIGINT)
    except Terminated as exc:
        log.info("%s", exc, extra=FILE_ONLY)
        return exc.exit_code
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except Exception:
        log.error("unexpected error", exc_info=True, extra=FILE_ONLY)
        raise


def prepare_window() -> None:
    """Before Qt starts: a display, the libraries Qt's platform plugin needs, Qt's own plugin folder."""
    from app.gui.launch import prepare_qt
    from app.sinks.preview import require_display

    require_display()
    prepare_qt()


def open_gui(args) -> int:
    screenshot = getattr(args, "screenshot", None)  # absent without the gui subcommand
    if not screenshot:  # the screenshot renders offscreen: no display, no X11 libraries
        prepare_window()
    from app.gui.launch import run_gui
    return run_gui(screenshot)


if __name__ == "__main__":
    raise SystemExit(main())
