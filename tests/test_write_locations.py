"""Harmonicam writes only where the user pointed it and into its own cache, config and log folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_run_writes_only_its_output_and_the_app_folders(tmp_path):
    home, work, out = tmp_path / "home", tmp_path / "work", tmp_path / "out"
    for folder in (home, work, out):
        folder.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "PYTHONPATH": str(ROOT)}
    env.pop("MPLCONFIGDIR", None)
    done = subprocess.run([sys.executable, "-m", "app", "run", "--source", "sample", "--frames", "3",
                           "--background", "#203040", "--output", str(out / "clip.mp4")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert files_under(out) == ["clip.mp4"]            # the output, complete, no partial file beside it
    assert files_under(work) == [] and files_under(home) == []
    written = {p.split(os.sep)[0] for p in files_under(tmp_path)}
    assert written <= {"out", "cache", "config", "state"}
    # third-party libraries that follow the XDG rules keep their own folders beside ours (matplotlib's
    # font list); nothing of ours lands outside "harmonicam"
    ours = [p for p in files_under(tmp_path / "cache") + files_under(tmp_path / "state")
            if not p.startswith(("matplotlib", "fontconfig"))]
    assert ours and all(p.startswith("harmonicam") for p in ours), ours
