"""The log: a rotating file in the platform's log folder beside the console, DEBUG with --debug."""
from __future__ import annotations

import logging
import logging.handlers
import subprocess
import sys

import pytest

from app import logs
from app.cli import main


@pytest.fixture(autouse=True)
def state_in_tmp_path(isolated_logging, tmp_path, monkeypatch):
    """These tests look for the log under their own ``tmp_path``."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "harmonicam", False)]


def test_platform_log_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("sys.platform", "linux")
    assert logs.log_path() == tmp_path / "state" / "harmonicam" / "harmonicam.log"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # invalid by the XDG spec: ignored
    assert logs.log_dir() == tmp_path / "home" / ".local" / "state" / "harmonicam"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert logs.log_dir() == tmp_path / "home" / ".local" / "state" / "harmonicam"
    monkeypatch.setattr("sys.platform", "darwin")
    assert logs.log_dir() == tmp_path / "home" / "Library" / "Logs" / "harmonicam"
    monkeypatch.setattr("sys.platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    assert logs.log_dir() == tmp_path / "AppData" / "Local" / "harmonicam" / "Logs"


def test_records_reach_the_console_and_a_rotating_file(tmp_path, capsys):
    path = logs.setup_logging(debug=False, console=True)
    assert path == tmp_path / "state" / "harmonicam" / "harmonicam.log"
    log = logging.getLogger("harmonicam")
    log.info("hello %s", "file")
    log.debug("not shown without --debug")
    log.info("only in the file", extra=logs.FILE_ONLY)
    text = path.read_text()
    assert "INFO harmonicam: hello file" in text and "only in the file" in text and "not shown" not in text
    err = capsys.readouterr().err
    assert "harmonicam: hello file" in err and "only in the file" not in err
    (handler,) = [h for h in our_handlers() if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert (handler.maxBytes, handler.backupCount) == (1_000_000, 3)


def test_the_file_rotates_at_one_megabyte():
    path = logs.setup_logging(debug=False)
    log = logging.getLogger("harmonicam")
    for _ in range(50):  # 5 MB: the file and all three backups fill up, the oldest are dropped
        log.info("x" * 100_000)
    sizes = {p.name: p.stat().st_size for p in path.parent.iterdir()}
    assert set(sizes) == {"harmonicam.log", "harmonicam.log.1", "harmonicam.log.2", "harmonicam.log.3"}
    assert max(sizes.values()) <= 1_000_000


def test_setting_up_again_replaces_the_handlers():
    logs.setup_logging(debug=False, console=True)
    logs.setup_logging(debug=True, console=True)
    assert len(our_handlers()) == 2  # one console, one file
    assert all(h.level == logging.DEBUG for h in our_handlers()) and logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize("argv", [["--debug", "run", "--help"], ["run", "--help", "--debug"]])
def test_debug_anywhere_raises_the_file_to_debug(argv):
    assert main(argv) == 0
    logging.getLogger("harmonicam").debug("a debug line")
    assert "a debug line" in logs.log_path().read_text()
    assert all(h.level == logging.DEBUG for h in our_handlers())


@pytest.mark.parametrize("argv, shown", [(["run", "--help", "--debug"], True), (["run", "--help"], False)])
def test_debug_raises_the_console_to_debug(tmp_path, argv, shown):
    code = ("import logging, sys; from app.cli import main; main(sys.argv[1:]); "
            "logging.getLogger('harmonicam').debug('a debug line')")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert ("harmonicam: a debug line" in proc.stderr) is shown, proc.stderr


def test_a_program_with_its_own_console_logging_keeps_it(capsys):
    """As ``logging.basicConfig``: when logging is already set up (a test runner, an embedding program),
    only the file is added, so the console shows what that program decided."""
    own = logging.StreamHandler()
    logging.getLogger().addHandler(own)
    logs.setup_logging(debug=False)
    assert [type(h) for h in our_handlers()] == [logs.LogFileHandler]


def test_an_error_is_one_line_on_the_console_and_a_traceback_in_the_file(tmp_path, capsys):
    rc = main(["run", "--source", str(tmp_path / "missing.mp4"), "--output", str(tmp_path / "x.mp4")])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harmonicam: error: video") and "does not exist" in err[0]
    text = logs.log_path().read_text()
    assert "harmonicam 0.1" in text and "run --source" in text  # what was run
    assert "ERROR harmonicam: error: video" in text and "Traceback" in text and "RuntimeFailure" in text


def test_without_a_log_folder_the_app_still_runs(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should go")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    assert logs.setup_logging(debug=False, console=True) is None
    logging.getLogger("harmonicam").info("still on the console")
    assert "harmonicam: still on the console" in capsys.readouterr().err
    assert main(["lut", "--background", "#000000", "--out", str(tmp_path / "x.cube"), "--size", "1"]) == 2
    assert "use a whole number from 2 to 129" in capsys.readouterr().err
    assert blocker.read_text() == "a file where the log folder should go"


def test_without_debug_the_file_keeps_info_and_above(capsys):
    assert main(["run", "--help"]) == 0
    logging.getLogger("harmonicam").debug("a debug line")
    logging.getLogger("harmonicam").warning("a warning")
    text = logs.log_path().read_text()
    assert "a debug line" not in text and "WARNING harmonicam: a warning" in text
