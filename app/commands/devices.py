"""``harmonicam devices``: what this machine offers, and why each thing is or is not usable."""
from __future__ import annotations

import glob
import platform
from pathlib import Path

from models import registry


def cameras() -> list[tuple[str, str]]:
    """(index or path, name) of the video capture devices the OS lists."""
    found = []
    if platform.system() == "Linux":
        for node in sorted(glob.glob("/sys/class/video4linux/video*")):
            name = (Path(node) / "name").read_text(errors="replace").strip()
            dev = "/dev/" + Path(node).name
            if "loopback" not in name.lower():
                found.append((dev.removeprefix("/dev/video"), name))
    else:
        import cv2

        for i in range(5):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append((str(i), f"camera {i}"))
            cap.release()
    return found


def virtual_camera_report() -> list[tuple[str, str]]:
    """(backend, 'usable: device' or the failure with its fix) for each pyvirtualcam backend."""
    import pyvirtualcam

    from app.sinks.virtual_camera import VirtualCameraError, backends

    rows = []
    for name in backends():
        try:
            with pyvirtualcam.Camera(1280, 720, 30, backend=name) as cam:
                rows.append((name, f"usable: {cam.device}"))
        except RuntimeError as exc:
            err = VirtualCameraError(str(exc))
            rows.append((name, f"not usable: {err.detail.split(': ', 1)[-1]} — fix: {err.fix}"))
    return rows or [("(none)", "pyvirtualcam has no backend for this OS")]


def torch_report() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"cpu only (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def onnx_report() -> str:
    from models.matting.onnx_matting import onnx_providers

    providers = onnx_providers()
    return ", ".join(providers) if providers else "onnxruntime is not installed"


def runtime_report() -> list[tuple[str, str]]:
    """(runtime, where it can run the learned networks here) for each ``--runtime``; ONNX Runtime with the
    providers a session would ask for, best first, or what to install."""
    import torch

    from models.ops.onnx_runtime import ONNXRUNTIME, TORCH, RuntimeUnavailable, providers_for

    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    places = []
    for device in devices:
        try:
            places.append(f"{device} ({' → '.join(providers_for(device))})")
        except RuntimeUnavailable as exc:
            places.append(f"{device} not usable: {exc}")
    return [(TORCH, ", ".join(devices)), (ONNXRUNTIME, "; ".join(places))]


def devices_command() -> int:
    lines = ["Cameras:"]
    lines += [f"  {idx}: {name}" for idx, name in cameras()] or ["  none found (use --source sample or a file)"]
    lines.append("Virtual camera backends:")
    lines += [f"  {name}: {state}" for name, state in virtual_camera_report()]
    lines.append(f"Torch device: {torch_report()}")
    lines.append(f"ONNX Runtime providers: {onnx_report()}")
    lines.append("Network runtimes (--runtime):")
    lines += [f"  {name}: {where}" for name, where in runtime_report()]
    for kind in registry.KINDS:
        lines.append(f"{kind.capitalize()} models:")
        lines += [f"  {n}: {'ready' if ok else 'unavailable'} — {why}" for n, ok, why in registry.available(kind)]
    print("\n".join(lines))
    return 0
