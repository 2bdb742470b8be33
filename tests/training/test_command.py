"""Training and evaluation commands end on a missing or unusable path with one line and exit 1, no traceback
(``--debug`` shows it)."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from models.training.command import message

ROOT = Path(__file__).resolve().parents[2]


def test_the_message_names_the_file_and_the_reason_or_keeps_the_commands_own_words():
    assert message(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.json")) == (
        "x.json: No such file or directory; check the path")
    assert message(FileNotFoundError("--data nope: not 'registry' and not a folder")) == (
        "--data nope: not 'registry' and not a folder")


@pytest.mark.parametrize("debug", [False, True])
def test_a_missing_input_is_one_line_and_exit_1(tmp_path, debug):
    args = [sys.executable, "-m", "models.training.manifest", str(tmp_path / "w.safetensors"),
            "--evaluation", str(tmp_path / "missing.json"), *(["--debug"] if debug else [])]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    if debug:
        assert "Traceback" in done.stderr and "FileNotFoundError" in done.stderr
    else:
        assert done.stderr == (f"python -m models.training.manifest: error: {tmp_path / 'missing.json'}: "
                               "No such file or directory; check the path\n")
