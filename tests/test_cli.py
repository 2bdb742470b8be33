"""The command line end to end: real sample clip, real MediaPipe, real video files."""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app import cli
from app.cli import build_parser, main
from app.commands.run import open_run_source, stage_choice
from app.errors import RuntimeFailure
from app.imaging import read_rgb
from app.stream import Stream
from app.sinks.base import NullSink
from app.sinks.matte import grey
from tests.conftest import write_image, write_video

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("isolated_logging")


def run_cli(*args, cwd=None):
    """The installed entry point in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("harmonizer, blend", [("none", "linear"), ("harmonizer", "auto"), ("adain", "defringe"),
                                               ("adain", "learned")])
def test_run_replaces_the_background_of_the_sample_clip(tmp_path, sample_clip, harmonizer, blend):
    bg = np.zeros((720, 1280, 3), np.uint8)
    bg[:] = (20, 200, 60)  # a green the sample clip does not contain
    bg_path = write_image(tmp_path / "green.png", bg)
    out = tmp_path / "out.mp4"
    rc = main(["run", "--source", "sample", "--background", str(bg_path), "--output", str(out),
               "--frames", "30", "--harmonizer", harmonizer, "--blend", blend])
    assert rc == 0 and out.is_file()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (1280, 720)
    src = cv2.VideoCapture(str(sample_clip))
    for _ in range(30):
        ok, result = cap.read()
        _, original = src.read()
    result, original = result[..., ::-1].astype(int), original[..., ::-1].astype(int)
    # background (top corners) is now the chosen green
    for corner in (result[:100, :150], result[:100, -150:]):
        assert np.abs(corner.mean(axis=(0, 1)) - (20, 200, 60)).max() < 12
    face = (slice(200, 330), slice(580, 700))
    if harmonizer == "none":  # the person (face, centre) is kept as it was
        assert np.abs(result[face] - original[face]).mean() < 8
    else:  # harmonized: the same face (structure), its colours adapted, not replaced
        diff = np.abs(result[face] - original[face]).mean()
        assert np.corrcoef(result[face].mean(axis=2).ravel(), original[face].mean(axis=2).ravel())[0, 1] > 0.9
        assert 0.5 < diff < 60


def test_run_writes_a_still_image(tmp_path, astronaut):
    src = write_image(tmp_path / "astro.png", astronaut)
    out = tmp_path / "out.png"
    assert main(["run", "--source", str(src), "--background", "#ff00ff", "--output", str(out)]) == 0
    img = read_rgb(out)
    assert img.shape == astronaut.shape and tuple(img[5, -5]) == (255, 0, 255)


def walking(astronaut: np.ndarray, n: int = 8) -> list[np.ndarray]:
    """A person who moves 16 px to the right every frame, so each frame has its own alpha."""
    small = cv2.resize(astronaut, (192, 192), interpolation=cv2.INTER_AREA)
    return [np.roll(small, 16 * i, axis=1) for i in range(n)]


def pipeline_mattes(argv: list[str]) -> list[np.ndarray]:
    """The grey α the pipeline gives for ``harmonicam run argv``'s frames, computed here without any file sink."""
    args = build_parser().parse_args(argv)
    mattes: list[np.ndarray] = []
    with Stream.build(open_run_source(args, True), stage_choice(args, args.harmonizer), args.background,
                      [NullSink()]) as stream:
        stream.run(args.frames, on_result=lambda result: mattes.append(grey(result.alpha)))
    return mattes


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    return frames, cap.get(cv2.CAP_PROP_FPS)


@pytest.fixture
def walk_run(tmp_path, astronaut) -> list[str]:
    src = write_video(tmp_path / "walk.avi", walking(astronaut), fps=25)
    return ["run", "--source", str(src), "--background", "#00ff00", "--harmonizer", "none", "--blend", "linear",
            "--frames", "6"]


def test_run_writes_the_matte_video_frame_aligned_with_the_output(tmp_path, walk_run):
    out, matte = tmp_path / "out.mp4", tmp_path / "matte.mp4"
    assert main([*walk_run, "--output", str(out), "--output-matte", str(matte)]) == 0
    (outputs, out_fps), (mattes, matte_fps) = read_video(out), read_video(matte)
    assert len(mattes) == len(outputs) == 6 and matte_fps == out_fps == pytest.approx(25)
    assert mattes[0].shape == outputs[0].shape == (192, 192, 3)
    expected = pipeline_mattes(walk_run)
    for i, (m, output) in enumerate(zip(mattes, outputs)):
        m = m.astype(int)
        assert np.abs(m - m[..., :1]).max() <= 8  # grey: its channels agree up to mp4v's chroma noise
        errors = [np.abs(m[..., 1] - e).mean() for e in expected]
        assert errors[i] < 4 and int(np.argmin(errors)) == i  # the α of this very frame, not a neighbour's
        # where the matte says background, the output shows the chosen green
        assert np.abs(output[m[..., 1] < 5][:, ::-1].astype(int) - (0, 255, 0)).mean() < 12


def test_run_writes_the_matte_as_a_png_sequence(tmp_path, walk_run):
    out = tmp_path / "out.mp4"
    assert main([*walk_run, "--output", str(out), "--output-matte", str(tmp_path / "matte_%05d.png")]) == 0
    pngs = sorted(tmp_path.glob("matte_*.png"))
    assert [p.name for p in pngs] == [f"matte_{i:05d}.png" for i in range(6)] == \
        [f"matte_{i:05d}.png" for i in range(len(read_video(out)[0]))]
    for png, expected in zip(pngs, pipeline_mattes(walk_run)):
        np.testing.assert_array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), expected)  # lossless, 8-bit grey
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_matte_that_fails_mid_run_leaves_nothing_half_written(tmp_path, walk_run, monkeypatch, capsys):
    written = []

    def fails_at_the_third_frame(path, image):
        written.append(path)
        return len(written) < 3 and real_imwrite(path, image)

    real_imwrite = cv2.imwrite
    monkeypatch.setattr(cv2, "imwrite", fails_at_the_third_frame)
    assert main([*walk_run, "--output", str(tmp_path / "out.mp4"),
                 "--output-matte", str(tmp_path / "matte_%05d.png")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'matte_00002.png'}; check the folder" in err and "Traceback" not in err
    assert len(written) == 3 and [p.name for p in tmp_path.iterdir()] == ["walk.avi"]  # no output, no matte


@pytest.mark.parametrize("name, text", [
    ("matte.txt", "--output-matte {dir}/matte.txt: unsupported file type; use a video"),
    ("matte.png", "a PNG sequence needs exactly one frame number in its file name, such as matte_%05d.png"),
    ("mattes/", "--output-matte {dir}/mattes/ is a folder; give a video such as {dir}/mattes/matte.mp4"),
    ("nodir/matte.mp4", "folder {dir}/nodir does not exist; create it first"),
])
def test_a_bad_matte_path_is_refused_up_front(tmp_path, capsys, name, text):
    (tmp_path / "mattes").mkdir()
    assert main(["run", "--source", "sample", "--output-matte", f"{tmp_path}/{name}"]) == 2
    err = capsys.readouterr().err
    assert text.format(dir=tmp_path) in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["mattes"]


@pytest.mark.parametrize("args, code, text", [
    (["run", "--source", "missing.mp4", "--output", "x.mp4"], 1, "does not exist"),
    (["run", "--source", "sample", "--harmonizer", "nope"], 2, "unknown harmonizer 'nope'"),
    (["run", "--source", "sample", "--matting", "nope"], 2, "unknown matting 'nope'"),
    (["bench", "--parts", "--devices", "cuda"], 2, "bench --parts measures the CPU pipeline"),
    (["lut", "--background", "#000000", "--out", "x.cube", "--harmonizer", "reinhard"], 2,
     "unrecognized arguments: --harmonizer reinhard"),
    (["run", "--source", "sample", "--resolution", "big"], 2, "not WIDTHxHEIGHT"),
    (["run", "--source", "sample", "--background", "missing.jpg"], 1, "does not exist"),
    (["run", "--source", "sample", "--matting", "onnx"], 1, "needs --matting-model"),
    (["run", "--source", "sample", "--frames", "2"], 1, "virtual camera could not start"),
    (["--bogus"], 2, "unrecognized arguments"),
])
def test_bad_input_is_one_sentence_without_traceback(tmp_path, args, code, text):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert text in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written


@pytest.mark.parametrize("args", [
    ["--debug", "run", "--source", "missing.mp4", "--output", "x.mp4"],
    ["run", "--source", "missing.mp4", "--output", "x.mp4", "--debug"],  # after the subcommand, as users type it
    ["run", "--debug", "--source", "missing.mp4", "--output", "x.mp4"],
])
def test_debug_shows_the_traceback_wherever_it_is(tmp_path, args):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "RuntimeFailure: video missing.mp4 does not exist" in proc.stderr
    assert "unrecognized arguments" not in proc.stderr


@pytest.mark.parametrize("args", [["--version"], ["run", "--version"], ["lut", "--version"],
                                  ["bench", "--frames", "5", "--version"]])
def test_version_anywhere(args, capsys):
    assert main(args) == 0
    assert capsys.readouterr().out == f"harmonicam {cli.version()}\n"


def test_version_comes_from_the_package_or_else_pyproject(monkeypatch):
    import importlib.metadata
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert cli.version() == importlib.metadata.version("harmonicam")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert cli.version() == declared


def test_version_in_a_subprocess(tmp_path):
    proc = run_cli("run", "--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"harmonicam {cli.version()}\n" and proc.stderr == ""


@pytest.mark.parametrize("args, text", [
    (["run", "--strength", "5"], "argument --strength: 5 is out of range; use a number from 0 to 1"),
    (["run", "--strength", "-1"], "argument --strength: -1 is out of range; use a number from 0 to 1"),
    (["run", "--strength", "nan"], "argument --strength: nan is out of range; use a number from 0 to 1"),
    (["run", "--strength", "strong"], "argument --strength: 'strong' is not a number; use a number from 0 to 1"),
    (["run", "--smoothing", "-1"], "argument --smoothing: -1 is out of range; use a number from 0 to 2"),
    (["run", "--smoothing", "60"], "argument --smoothing: 60 is out of range; use a number from 0 to 2"),
    (["run", "--fps", "0"], "argument --fps: 0 is out of range; use a number from 1 to 240"),
    (["run", "--fps", "1e9"], "argument --fps: 1e9 is out of range; use a number from 1 to 240"),
    (["run", "--frames", "0"], "argument --frames: 0 is out of range; use a whole number from 1 to 1000000"),
    (["run", "--frames", "2.5"], "argument --frames: '2.5' is not a whole number"),
    (["run", "--frames", "\u00b2"], "is not a whole number"),  # "²" passes str.isdigit but not int()
    (["run", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["run", "--resolution", "99999x720"], "99999x720 is out of range; use a size from 16x16 to 7680x4320"),
    (["lut", "--background", "#000000", "--out", "x.cube", "--size", "1"],
     "argument --size: 1 is out of range; use a whole number from 2 to 129"),
    (["lut", "--background", "#000000", "--out", "x.cube", "--size", "100000"],
     "argument --size: 100000 is out of range; use a whole number from 2 to 129"),
    (["lut", "--background", "#000000", "--out", "x.cube", "--frames", "100000"],
     "argument --frames: 100000 is out of range; use a whole number from 1 to 10000"),
    (["lut", "--background", "#000000", "--out", "x.cube", "--strength", "2"], "argument --strength: 2 is out"),
    (["bench", "--frames", "0"], "argument --frames: 0 is out of range; use a whole number from 1 to 100000"),
    (["bench", "--busy-cores", "0,-1"], "argument --busy-cores: 0,-1 is out of range; use whole numbers from 0 to"),
    (["bench", "--busy-cores", f"{os.cpu_count() + 1}"], "is out of range; use whole numbers from 0 to"),
    (["bench", "--busy-cores", "one"], "argument --busy-cores: 'one' is not a list of whole numbers"),
    (["bench", "--resolutions", "1280x720,0x0"], "0x0 is out of range"),
    (["bench", "--devices", "cpu,tpu"], "argument --devices: 'cpu,tpu' is not a comma-separated list of auto, cpu"),
    (["bench", "--json", "no/such/folder/b.json"], "argument --json: folder no/such/folder does not exist"),
])
def test_every_numeric_option_is_checked_before_any_work(monkeypatch, capsys, args, text):
    for module, name in (("app.commands.run", "run_command"), ("app.commands.lut", "lut_command"),
                         ("app.commands.bench", "bench_command")):
        monkeypatch.setattr(f"{module}.{name}", lambda *a, **k: pytest.fail("the command ran"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harmonicam: error: ") and text in err[0], err
    assert f"(see 'harmonicam {args[0]} --help')" in err[0]


@pytest.mark.parametrize("args", [
    ["run", "--strength", "0", "--smoothing", "0", "--fps", "1", "--frames", "1"],
    ["run", "--strength", "1", "--smoothing", "2", "--fps", "240", "--frames", "1000000"],
    ["lut", "--background", "#000000", "--out", "x.cube", "--size", "2", "--frames", "1"],
    ["lut", "--background", "#000000", "--out", "x.cube", "--size", "129", "--frames", "10000"],
    ["bench", "--busy-cores", f"0,{os.cpu_count()}", "--frames", "100000"],
])
def test_the_limits_themselves_are_accepted(args):
    build_parser().parse_args(args)


def test_every_option_has_help_text():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [f"{prog} {action.option_strings[0]}"
               for prog, p in [("harmonicam", parser), *commands.choices.items()]
               for action in p._actions
               if action.option_strings and (not action.help or action.help == argparse.SUPPRESS)]
    assert missing == []
    assert {"run", "devices", "bench", "lut", "gui"} <= set(commands.choices)


def test_bench_help_describes_every_option(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("frame sizes to measure", "matting backend", "model file for the matting", "--debug", "--version"):
        assert text in out


@pytest.mark.skipif(bool(glob.glob("/dev/video*")) or not sys.platform.startswith("linux"),
                    reason="needs a Linux machine without a camera")
def test_a_missing_camera_is_one_line_without_opencv_noise(tmp_path):
    proc = run_cli("run", "--source", "0", "--frames", "1", "--output", "x.png", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["harmonicam: error: camera 0 could not be opened; check that it is "
                                        "connected and not used by another app, or use --source sample"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(bool(glob.glob("/dev/video*")) or not sys.platform.startswith("linux"),
                    reason="needs a Linux machine without a camera")
def test_debug_shows_opencv_messages_again(tmp_path):
    proc = run_cli("run", "--source", "0", "--frames", "1", "--output", "x.png", "--debug", cwd=tmp_path)
    assert proc.returncode == 1 and "VIDEOIO" in proc.stderr


# --- before the window: Qt's libraries and OpenCV's Qt plugin folder ---------------------------------------

@pytest.fixture
def desktop(monkeypatch):
    """A Linux X11 desktop session as far as the checks can tell (Qt itself is not started)."""
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)


def without(*sonames):
    return lambda soname: soname not in sonames


def test_a_missing_xcb_library_is_one_sentence_naming_the_packages(desktop, monkeypatch, capsys):
    monkeypatch.setattr("app.gui.launch.can_load", without("libxcb-cursor.so.0", "libxcb-icccm.so.4"))
    monkeypatch.setattr("app.gui.launch.run_gui", lambda *a: pytest.fail("Qt was started"))
    assert main(["gui"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["harmonicam: error: the window cannot start because Qt needs libxcb-cursor.so.0 and "
                   "libxcb-icccm.so.4, which are not installed; install them with 'sudo apt install "
                   "libxcb-cursor0 libxcb-icccm4' (Debian/Ubuntu), or use 'harmonicam run --output FILE' "
                   "without a window"]


def test_the_preview_window_is_checked_too(desktop, monkeypatch, capsys):
    monkeypatch.setattr("app.gui.launch.can_load", without("libxkbcommon-x11.so.0"))
    monkeypatch.setattr("app.commands.run.run_command", lambda *a, **k: pytest.fail("the run started"))
    assert main(["run", "--source", "sample", "--preview"]) == 1
    assert "sudo apt install libxkbcommon-x11-0'" in capsys.readouterr().err


def test_xcb_libraries_are_not_needed_offscreen_or_on_wayland(desktop, monkeypatch):
    from app.gui.launch import missing_qt_libraries, prepare_qt, qt_platform

    monkeypatch.setattr("app.gui.launch.can_load", without("libxcb-cursor.so.0"))
    assert qt_platform() == "xcb" and missing_qt_libraries() == {"libxcb-cursor.so.0": "libxcb-cursor0"}
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert qt_platform() == "wayland" and missing_qt_libraries() == {}
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert qt_platform() == "offscreen"
    prepare_qt()  # nothing missing for offscreen
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb;wayland")
    with pytest.raises(RuntimeFailure, match="libxcb-cursor0"):
        prepare_qt()
    monkeypatch.setattr("sys.platform", "darwin")
    prepare_qt()  # only Linux loads these


def test_the_check_uses_the_real_loader():
    from app.gui.launch import can_load

    assert can_load("libc.so.6") if sys.platform.startswith("linux") else True
    assert not can_load("libharmonicam-does-not-exist.so.0")


def test_opencv_plugin_folder_is_not_given_to_qt(monkeypatch, tmp_path):
    from app.gui.launch import drop_opencv_qt_paths

    cv2_plugins = Path(cv2.__file__).parent / "qt" / "plugins"
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(cv2_plugins))
    monkeypatch.setenv("QT_QPA_FONTDIR", str(Path(cv2.__file__).parent / "qt" / "fonts"))
    drop_opencv_qt_paths()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ and "QT_QPA_FONTDIR" not in os.environ
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(tmp_path))  # the user's own: kept
    drop_opencv_qt_paths()
    assert os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] == str(tmp_path)


def test_readme_lists_the_packages_the_check_names():
    from app.gui.launch import QT_LIBRARIES, XCB_LIBRARIES

    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("sudo apt install libxcb"))
    assert set(command.split()[3:]) == set(XCB_LIBRARIES.values()) | set(QT_LIBRARIES.values())


def test_devices_report(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for heading in ("Cameras:", "Virtual camera backends:", "Torch device:", "ONNX Runtime providers:",
                    "Harmonizer models:"):
        assert heading in out
    assert "mediapipe: ready" in out


def test_bench_prints_a_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--resolutions", "320x180", "--harmonizers", "none", "--frames", "5",
                 "--busy-cores", "0,1", "--json", str(path), "--plot", str(tmp_path / "bench.png")]) == 0
    import cv2  # the chart is a real picture, not an empty file
    chart = cv2.imread(str(tmp_path / "bench.png"))
    assert chart is not None and chart.shape[1] >= 600 and chart.std() > 10
    out = capsys.readouterr().out
    assert "FPS" in out and "floor" in out
    assert out.count("latency ms") == 1  # the table is printed once, with its header
    table = [line for line in out.splitlines() if line.startswith("cpu ")]
    assert len(table) == 4 and len({line.index("320x180") for line in table}) == 1  # the columns line up
    report = json.loads(path.read_text())
    assert {"platform", "cpu", "cores", "torch"} <= set(report["machine"])
    plain_idle, plain_busy, idle, busy = report["results"]
    assert (plain_idle["blend"], plain_busy["blend"]) == ("plain", "plain")  # the yardstick, in the same run
    assert plain_idle["vs_plain"] == plain_busy["vs_plain"] == 1.0
    assert {"capture", "matting", "blend"} <= set(plain_idle["stages_ms"])
    assert (idle["busy_cores"], busy["busy_cores"]) == (0, 1)  # side by side, in one run
    assert idle["vs_plain"] == round(idle["fps"] / plain_idle["fps"], 2)
    assert busy["vs_plain"] == round(busy["fps"] / plain_busy["fps"], 2)  # each against plain at its own load
    row = idle
    assert row["resolution"] == "320x180" and row["harmonizer"] == "none" and row["fps"] > 0
    assert {"capture", "matting", "background", "blend", "harmonize", "sink"} <= set(row["stages_ms"])
    assert set(row["stages_ms"]["matting"]) == {"median", "p95"}
    assert row["latency_p95_ms"] >= row["latency_ms"] > 0  # end to end, median and p95
    assert "gpu_memory_mb" not in row and "GPU MiB" not in out  # a CPU run has no device memory to report


def test_bench_table_shows_device_memory_of_cuda_rows():
    from app.commands.bench import format_table

    row = {"device": "cpu", "runtime": "torch", "busy_cores": 0, "resolution": "1920x1080", "blend": "linear",
           "harmonizer": "none", "fps": 40.0, "latency_ms": 20.0, "latency_p95_ms": 31.0,
           "stages_ms": {"blend": {"median": 1.0, "p95": 2.0}}}
    lines = format_table([row, {**row, "device": "cuda", "gpu_memory_mb": 412.4}], {}).splitlines()
    assert lines[1].endswith("GPU MiB")
    assert lines[2].split()[-2:] == ["20.0/31.0", "-"] and lines[3].split()[-2:] == ["20.0/31.0", "412"]


def test_preview_window_shows_the_run(tmp_path, qtbot):
    out = tmp_path / "out.mp4"
    assert main(["run", "--source", "sample", "--harmonizer", "none", "--output", str(out), "--frames", "5",
                 "--preview"]) == 0
    assert out.is_file()


def test_event_loops_after_the_preview_window_still_run(tmp_path, qtbot):
    """The preview ends its own loop, not the application's: a quit left pending ended every later loop at once,
    and a window opened after it (the next test's) never showed a frame."""
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    assert main(["run", "--source", "sample", "--harmonizer", "none", "--output", str(tmp_path / "out.mp4"),
                 "--frames", "3", "--preview"]) == 0
    QApplication.processEvents()  # what the next test's first wait does
    loop, timer_fired = QEventLoop(), []
    QTimer.singleShot(50, lambda: (timer_fired.append(True), loop.quit()))
    loop.exec()
    assert timer_fired  # the loop ran until its timer, instead of returning at once


def test_preview_without_a_display_says_so(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert main(["run", "--source", "sample", "--preview", "--frames", "1"]) == 1  # a runtime failure, not an option
    err = capsys.readouterr().err
    assert "no desktop display" in err and "QT_QPA_PLATFORM=offscreen" in err and "--output FILE" in err


def test_lut_labels_what_it_prints(tmp_path, caplog, astronaut):
    source = write_image(tmp_path / "person.png", astronaut)
    cube = tmp_path / "look.cube"
    assert main(["lut", "--source", str(source), "--background", "#2040c0", "--frames", "2", "--size", "2",
                 "--out", str(cube)]) == 0
    err = caplog.text  # the console shows the same record
    assert f"wrote {cube} (2³) from 2 frames; filter arguments: temperature " in err
    for name in ("brightness", "contrast", "saturation", "highlight", "shadow"):
        assert f", {name} " in err
    assert "; keep-bright lift: gain ×" in err and ", offset " in err


@pytest.mark.parametrize("option, name, text", [
    ("--out", "look.cube", "this is a folder; give a file name such as"),
    ("--output", "clip.mp4", "this is a folder; give a file name such as"),
])
def test_an_output_that_is_a_folder_is_refused_up_front(tmp_path, capsys, option, name, text):
    (tmp_path / name).mkdir()
    args = (["lut", "--background", "#000000", "--out", str(tmp_path / name)] if option == "--out" else
            ["run", "--source", "sample", "--output", str(tmp_path / name)])
    assert main(args) == 2
    assert text in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
@pytest.mark.parametrize("args", [["lut", "--background", "#000000", "--out", "{dir}/look.cube"],
                                  ["run", "--source", "sample", "--output", "{dir}/clip.mp4"],
                                  ["run", "--source", "sample", "--output-matte", "{dir}/matte_%05d.png"]])
def test_an_output_folder_that_is_not_writable_is_refused_up_front(tmp_path, capsys, args):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main([a.format(dir=folder) for a in args]) == 2
    finally:
        folder.chmod(0o700)
    assert "is not writable; choose another folder" in capsys.readouterr().err
