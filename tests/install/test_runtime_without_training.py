"""The application stands without the training side module (``models/training``)."""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.sinks.video_codec import sample_entry

REPO = Path(__file__).resolve().parents[2]
TRAINING = "models.training"

#: Runs the CLI with every import of models.training failing, as if the folder were not installed.
BLOCKED = """
import importlib.abc, sys

class NoTraining(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "models.training" or name.startswith("models.training."):
            raise ImportError(f"{name} is blocked: the application must not need it")
        return None

sys.meta_path.insert(0, NoTraining())
try:
    import models.training
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block")
from app.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports (relative imports resolved against ``package``), by full name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) ==
              "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return names


def test_no_module_outside_training_imports_it():
    offenders = []
    for path in sorted((REPO / "models").rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[:2] == ("models", "training"):
            continue
        parts = relative.with_suffix("").parts
        package = ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])
        if any(name == TRAINING or name.startswith(TRAINING + ".") for name in imported_modules(path, package)):
            offenders.append(str(relative))
    assert offenders == []


def test_the_scan_sees_relative_and_lazy_imports(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from ..training import export\n    import importlib\n"
                      "    importlib.import_module('models.training.corpus')\n")
    assert {"models.training", "models.training.export", "models.training.corpus"} <= \
        imported_modules(module, "models.ops")


@pytest.mark.slow  # a cold cache writes the sample clip and exports the harmonizer for ONNX Runtime
def test_the_default_run_works_with_models_training_unimportable(tmp_path):
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", BLOCKED, "run", "--source", "sample", "--frames", "3",
                           "--output", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    expected = "avc1" if importlib.util.find_spec("av") else "mp4v"
    assert sample_entry(out) == expected
