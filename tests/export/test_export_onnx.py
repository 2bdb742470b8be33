"""``harmonicam export-onnx``: every learned network as a validated .onnx that agrees with torch."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.cli import main
from models import registry
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet
from models.ops.checkpoint import save_safetensors
from models.ops.onnx_export import ExportError, OnnxSpec, export_onnx


def test_the_shipped_harmonizer_exports_with_a_dynamic_batch(tmp_path):
    assert main(["export-onnx", "--out", str(tmp_path / "onnx")]) == 0
    path = tmp_path / "onnx" / "harmonizer.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["composite", "mask"]
    composite = np.random.default_rng(0).random((3, 3, 256, 256), dtype=np.float32)
    mask = np.random.default_rng(1).random((3, 1, 256, 256), dtype=np.float32)
    (got,) = session.run(None, {"composite": composite, "mask": mask})
    network = registry.create("harmonizer", "harmonizer").network.float().eval()
    with torch.no_grad():
        want = network(torch.from_numpy(composite), torch.from_numpy(mask)).numpy()
    assert got.shape == (3, 6) and np.abs(got - want).max() < 1e-4
    written = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert {"harmonizer.onnx", "adain.onnx"} <= set(written)
    assert all(name.endswith(".onnx") for name in written)  # no partial files


def test_the_complete_background_variant_exports_its_embedding_too(tmp_path):
    weights = tmp_path / "bg.safetensors"
    save_safetensors(HarmonizerLiteNet(complete_background=True), weights)
    assert main(["export-onnx", "--out", str(tmp_path), "--harmonizer-weights", str(weights)]) == 0
    session = ort.InferenceSession(str(tmp_path / "harmonizer.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["composite", "mask", "background"]


def test_a_graph_that_disagrees_with_torch_is_refused(tmp_path):
    class Dropout(torch.nn.Module):  # random in torch's training mode; exported in eval mode
        def forward(self, x):
            return x + torch.rand_like(x)

    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(OnnxSpec("noisy", Dropout(), ((1, 4),), ("x",), ("y",)), tmp_path / "noisy.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_out_path_that_is_a_file_is_a_usage_error(tmp_path):
    out = tmp_path / "file.onnx"
    out.write_text("")
    assert main(["export-onnx", "--out", str(out)]) == 2


def test_an_out_folder_that_cannot_be_made_is_one_sentence(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file where the folder's parent should be")
    assert main(["export-onnx", "--out", str(tmp_path / "taken" / "onnx")]) == 1
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and err.count("\n") == 1
