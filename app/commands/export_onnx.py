"""``harmonicam export-onnx --out DIR``: one validated ``.onnx`` per learned network in the registry."""
from __future__ import annotations

import logging
from pathlib import Path

from app.assemble import StageChoice, create, make_harmonizer, takes_runtime
from app.errors import RuntimeFailure, UsageError
from app.sinks.paths import make_folder
from models import registry
from models.ops.onnx_export import OPSET, ExportError, export_onnx

log = logging.getLogger("harmonicam")


def export_command(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the .onnx files")
    # On torch: the modules are what gets exported (no stand-ins of their own are needed for that).
    models = [make_harmonizer(StageChoice(harmonizer=name, device="cpu", runtime="torch",
                                          harmonizer_weights=args.harmonizer_weights
                                          if name == "harmonizer" else None))
              for name in registry.usable("harmonizer")]
    models += [create("blend", name) for name in registry.usable("blend")]
    models += [create("matting", name) for name in registry.usable("matting") if takes_runtime("matting", name)]
    try:
        specs = [spec for model in models for spec in getattr(model, "onnx_specs", lambda: [])()]
        if not specs:
            raise RuntimeFailure("no learned network is installed to export")
        make_folder(out, "--out")
        for spec in specs:
            path = out / f"{spec.name}.onnx"
            try:
                diff = export_onnx(spec, path, args.opset)
            except ExportError as exc:
                raise RuntimeFailure(f"{exc}; report this with the weights file you used") from None
            log.info("wrote %s (opset %d, dynamic batch; ONNX Runtime vs torch max difference %.1e)", path,
                     args.opset, diff)
    finally:
        for model in models:
            model.close()
    return 0


__all__ = ["OPSET", "export_command"]
