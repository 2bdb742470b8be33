"""The command line end to end: real sample clip, real MediaPipe, real video files."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from app.cli import main
from app.imaging import read_rgb
from tests.conftest import write_image


def run_cli(*args, cwd=None):
    """The installed entry point in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("harmonizer", ["none", "harmonizer"])
def test_run_replaces_the_background_of_the_sample_clip(tmp_path, sample_clip, harmonizer):
    bg = np.zeros((720, 1280, 3), np.uint8)
    bg[:] = (20, 200, 60)  # a green the sample clip does not contain
    bg_path = write_image(tmp_path / "green.png", bg)
    out = tmp_path / "out.mp4"
    rc = main(["run", "--source", "sample", "--background", str(bg_path), "--output", str(out),
               "--frames", "30", "--harmonizer", harmonizer])
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


@pytest.mark.parametrize("args, code, text", [
    (["run", "--source", "missing.mp4", "--output", "x.mp4"], 1, "does not exist"),
    (["run", "--source", "sample", "--harmonizer", "nope"], 2, "unknown harmonizer 'nope'"),
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


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "run", "--source", "missing.mp4", "--output", "x.mp4", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


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
                 "--busy-cores", "0,1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "FPS" in out and "floor" in out
    table = [line for line in out.splitlines() if line.startswith("cpu ")]
    assert len({line.index("320x180") for line in table}) == 1  # the columns line up
    report = json.loads(path.read_text())
    assert {"platform", "cpu", "cores", "torch"} <= set(report["machine"])
    idle, busy = report["results"]
    assert (idle["busy_cores"], busy["busy_cores"]) == (0, 1)  # side by side, in one run
    row = idle
    assert row["resolution"] == "320x180" and row["harmonizer"] == "none" and row["fps"] > 0
    assert {"capture", "matting", "background", "blend", "harmonize", "sink"} <= set(row["stages_ms"])
    assert set(row["stages_ms"]["matting"]) == {"median", "p95"}


def test_preview_window_shows_the_run(tmp_path, qtbot):
    out = tmp_path / "out.mp4"
    assert main(["run", "--source", "sample", "--harmonizer", "none", "--output", str(out), "--frames", "5",
                 "--preview"]) == 0
    assert out.is_file()


def test_preview_without_a_display_says_so(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert main(["run", "--source", "sample", "--preview", "--frames", "1"]) == 2
    assert "no desktop display" in capsys.readouterr().err
