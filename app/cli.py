"""The ``harmonicam`` command line: run, devices, bench (and the GUI with no subcommand)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from app.errors import HarmonicamError, UsageError
from models import registry
from models.ops.threads import apply_thread_budget

log = logging.getLogger("harmonicam")


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text} is outside 16x16 … 7680x4320")
    return w, h


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_stage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matting", default="mediapipe", metavar="NAME",
                   help="matting backend: " + ", ".join(registry.names("matting")) + " (default mediapipe)")
    p.add_argument("--matting-model", metavar="PATH",
                   help="model file for the matting backend (.tflite for mediapipe, RVM/MODNet .onnx for onnx)")
    p.add_argument("--blend", default="linear", metavar="NAME",
                   help="blending: " + ", ".join(registry.names("blend")))
    p.add_argument("--blend-weights", metavar="PATH", help="checkpoint for a learned blend")
    p.add_argument("--harmonizer-weights", metavar="PATH",
                   help="checkpoint for the harmonizer (ours .safetensors or an official .pth)")
    p.add_argument("--strength", type=float, default=1.0, help="harmonization strength 0…1 (default 1)")
    p.add_argument("--smoothing", type=float, default=0.05, metavar="SECONDS",
                   help="time constant of the alpha smoothing in seconds; 0 turns it off (default 0.05)")
    p.add_argument("--no-refine", action="store_true", help="skip the edge-aware matte refinement")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def build_parser() -> Parser:
    parser = Parser(prog="harmonicam", description="Real-time background replacement with colour "
                    "harmonization, published as a virtual webcam. Without a subcommand it opens the window.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    run = sub.add_parser("run", help="process a camera, video or image into the virtual camera and/or files")
    run.add_argument("--source", default="0", help="camera index, /dev/videoN, video or image path, or 'sample' "
                     "(default 0; falls back to sample when no camera exists and --source is not given)")
    run.add_argument("--background", default="blur", help="image or video path, blur[:strength] or #rrggbb "
                     "(default blur)")
    run.add_argument("--harmonizer", default="harmonizer", metavar="NAME",
                     help="harmonizer: " + ", ".join(registry.names("harmonizer")) + " (default harmonizer)")
    add_stage_options(run)
    run.add_argument("--resolution", type=parse_resolution, metavar="WxH",
                     help="frame size (default: the file's own; 1280x720 for cameras)")
    run.add_argument("--fps", type=positive_float, help="frame-rate cap")
    run.add_argument("--output", action="append", metavar="vcam|PATH",
                     help="'vcam' for the virtual camera or an output file (.mp4, .avi, .png); repeatable "
                     "(default vcam)")
    run.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    run.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    run.add_argument("--frames", type=positive_int, help="stop after N frames")
    run.add_argument("--loop", action="store_true", help="loop a video source")
    run.add_argument("--preview", action="store_true", help="show the output in a window")

    sub.add_parser("devices", help="list cameras, virtual-camera backends, torch and ONNX Runtime devices")

    bench = sub.add_parser("bench", help="measure per-stage and end-to-end speed")
    bench.add_argument("--source", default="sample", help="video source (default: the sample clip)")
    bench.add_argument("--resolutions", type=lambda s: [parse_resolution(v) for v in s.split(",")],
                       default=[(1280, 720), (1920, 1080)], metavar="WxH[,WxH]")
    bench.add_argument("--devices", type=lambda s: s.split(","), metavar="cpu[,cuda]",
                       help="default: cpu, plus cuda when present")
    bench.add_argument("--harmonizers", type=lambda s: s.split(","), metavar="NAME[,NAME]",
                       help="default: every usable harmonizer in the registry")
    bench.add_argument("--matting", default="mediapipe", metavar="NAME")
    bench.add_argument("--matting-model", metavar="PATH")
    bench.add_argument("--blend", default="linear", metavar="NAME",
                       help="blending: " + ", ".join(registry.names("blend")) + " (default linear)")
    bench.add_argument("--busy-cores", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1],
                       metavar="N[,N]", help="also measure while N other processes each keep a core busy, as a "
                       "video-call app does (default 0,1: idle and one core busy)")
    bench.add_argument("--frames", type=positive_int, default=120, help="timed frames per row (default 120)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON")

    lut = sub.add_parser("lut", help="export the harmonization of a source over a background as a .cube 3D LUT")
    lut.add_argument("--source", default="sample", help="video, image or 'sample' (default sample)")
    lut.add_argument("--background", required=True, help="image or video path, blur[:strength] or #rrggbb")
    lut.add_argument("--out", required=True, metavar="PATH.cube", help="where to write the LUT")
    lut.add_argument("--frames", type=positive_int, default=60,
                     help="frames to run before exporting, so the smoothing settles (default 60)")
    lut.add_argument("--size", type=positive_int, default=33, help="lattice points per axis (default 33)")
    lut.add_argument("--resolution", type=parse_resolution, metavar="WxH")
    add_stage_options(lut)

    gui = sub.add_parser("gui", help="open the window")
    gui.add_argument("--screenshot", metavar="PATH", help="render the window offscreen on the sample clip to "
                     "this PNG file and exit (no display needed)")
    return parser


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="harmonicam: %(message)s")
    if not debug:
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO/WARNING lines
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    setup_logging(debug)
    apply_thread_budget()
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            from app.commands.run import run_command
            return run_command(args, explicit_source="--source" in argv)
        if args.command == "devices":
            from app.commands.devices import devices_command
            return devices_command()
        if args.command == "lut":
            from app.commands.lut import lut_command
            return lut_command(args)
        if args.command == "bench":
            from app.commands.bench import bench_command
            return bench_command(args)
        return open_gui(args)
    except HarmonicamError as exc:
        if debug:
            raise
        print(f"harmonicam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def open_gui(args) -> int:
    screenshot = getattr(args, "screenshot", None)  # absent without the gui subcommand
    if not screenshot:
        from app.sinks.preview import require_display
        require_display()
    from app.gui.launch import run_gui
    return run_gui(screenshot)
