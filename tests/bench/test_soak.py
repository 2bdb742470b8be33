"""A long run with switches: flat memory, no leaked threads, no growing frame time.

The soak measures its own process's memory, so it runs in a fresh interpreter:
what other tests left behind in this one must not count.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import dataclasses, json
from app.assemble import StageChoice
from app.backgrounds import SHIPPED_DIR
from app.commands.soak import soak
from models.ops.allocator import keep_freed_memory
from models.ops.threads import apply_thread_budget
apply_thread_budget()
keep_freed_memory()  # as the app starts
backgrounds = [str(SHIPPED_DIR / "sunset-warm.jpg"), "blur:1", "#336699"]
report = soak(StageChoice(harmonizer="harmonizer"), backgrounds, ["harmonizer", "reinhard", "none"],
              size=(96, 54), frames=1200, switch_every=10)
print(json.dumps(dataclasses.asdict(report)))
"""


def test_thousands_of_frames_with_switches_keep_memory_and_threads_flat():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["frames"] == 1200 and report["switches"] == 120
    assert report["rss_mb_end"] - report["rss_mb_start"] < 40  # measured here: within ±30 MiB, no trend
    assert report["threads_end"] == report["threads_start"]  # every worker of every replaced stage ended
    assert report["frame_ms_end"] < 3 * report["frame_ms_start"] + 5


def test_the_soak_command_reports(tmp_path, capsys):
    from app.cli import main

    assert main(["bench", "--soak", "0.05", "--resolutions", "96x54", "--harmonizers", "none,reinhard",
                 "--json", str(tmp_path / "soak.json")]) == 0
    out = capsys.readouterr().out
    assert "soak:" in out and "memory" in out and "threads" in out
    soak = json.loads((tmp_path / "soak.json").read_text())["soak"]
    assert soak["frames"] > 0 and soak["threads_end"] == soak["threads_start"]
    assert not [t for t in threading.enumerate() if t.name.startswith(("harmonizer-args", "stage-closer"))]
