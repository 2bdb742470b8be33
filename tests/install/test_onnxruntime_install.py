"""One ONNX Runtime per environment: the extras choose one, and a mixed install is refused with the fix."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import RuntimeFailure
from app.install_check import check_onnxruntime_install, installed_onnxruntimes

REPO = Path(__file__).resolve().parents[2]


def requirement_names(requirements: list[str]) -> list[str]:
    return [re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements]


@pytest.fixture(scope="module")
def project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later; 3.10 skips the checks that read it
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def fake_distributions(folder: Path, *names: str) -> Path:
    """Installed-package records (``.dist-info``) as pip writes them, for ``importlib.metadata`` to find."""
    for name in names:
        info = folder / f"{name.replace('-', '_')}-1.28.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.28.0\n")
    return folder


def test_base_requirements_name_no_onnxruntime_and_each_extra_one(project):
    assert not [n for n in requirement_names(project["dependencies"]) if n.startswith("onnxruntime")]
    extras = project["optional-dependencies"]
    assert requirement_names(extras["cpu"]) == ["onnxruntime"]
    assert requirement_names(extras["gpu"]) == ["onnxruntime-gpu"]
    # dev goes with either: it must not bring the CPU one beside the GPU one
    assert not [n for n in requirement_names(extras["dev"]) if n.startswith("onnxruntime")]
    assert "harmonicam[train]" in extras["dev"]


def test_the_fix_names_the_ranges_the_extras_ask_for(project, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_distributions(tmp_path, "onnxruntime", "onnxruntime-gpu")))
    with pytest.raises(RuntimeFailure) as caught:
        check_onnxruntime_install()
    message = str(caught.value)
    assert "onnxruntime, onnxruntime-gpu are installed together" in message
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in message
    for extra in ("cpu", "gpu"):
        (requirement,) = project["optional-dependencies"][extra]
        assert f'pip install "{requirement}"' in message


def test_one_runtime_or_none_passes():
    assert len(installed_onnxruntimes()) <= 1  # this environment was installed through one extra
    check_onnxruntime_install()


def test_cli_refuses_a_mixed_install_in_one_sentence(tmp_path):
    fakes = fake_distributions(tmp_path / "site", "onnxruntime", "onnxruntime-gpu")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fakes), str(REPO)]))
    proc = subprocess.run([sys.executable, "-m", "app", "devices"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("harmonicam: error: onnxruntime, onnxruntime-gpu are installed together")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
