"""The window's settings: one JSON file in the config folder, written atomically.

A damaged file is never fatal and never silently lost: it is moved aside as
``settings.json.bad`` and the defaults are used; single values of the wrong
type fall back to their default one by one.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from app.assemble import StageChoice
from models.paths import config_dir
from app.sinks.virtual_camera import DEFAULT_FPS, DEFAULT_SIZE
from models.matting.postprocess import MatteOptions
from models.ops.files import atomic_path

log = logging.getLogger(__name__)

_STAGES = StageChoice()
_MATTE = MatteOptions()

#: Values a setting may hold besides its default's type.
_NULLABLE = {"matting_model", "harmonizer_weights", "vcam_backend", "vcam_device", "source"}
#: Allowed ranges of the numeric settings.
_RANGES = {"fps": (1.0, 240.0), "strength": (0.0, 1.0), "smoothing_s": (0.0, 5.0), "blur_strength": (0.1, 10.0)}
VIEWS = ("output", "split", "mask")
#: Where the pipeline runs: "auto" is the GPU (CUDA) when there is one, else the CPU.
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Settings:
    # Source: "" picks the first camera (the sample clip when there is none).
    source: str = ""
    resolution: tuple[int, int] = DEFAULT_SIZE
    fps: float = DEFAULT_FPS
    mirror_preview: bool = True   # a mirror-like self-view, as conferencing apps show
    mirror_output: bool = False   # what others see is not mirrored
    # Background: the spec that runs (path, blur:S, #rrggbb), and the gallery's memory.
    background: str = "blur:1"
    blur_strength: float = 1.0
    colour: str = "#2f6f8f"
    user_media: list[str] = field(default_factory=list)
    # Quality (names from the model registry).
    matting: str = _STAGES.matting
    matting_model: str | None = None
    blend: str = _STAGES.blend
    harmonizer: str = _STAGES.harmonizer
    harmonizer_weights: str | None = None
    strength: float = _STAGES.strength
    keep_bright: bool = _STAGES.keep_bright
    smoothing_s: float = _MATTE.smoothing_s
    refine: bool = _MATTE.refine
    device: str = "auto"  # one of DEVICES
    # Virtual camera: None lets pyvirtualcam choose.
    vcam_backend: str | None = None
    vcam_device: str | None = None
    vcam_always_on: bool = False  # False: pause while no app reads the virtual camera (harmonicam run --always-on)
    # View.
    view: str = "output"
    show_overlay: bool = False
    geometry: str = ""  # QMainWindow.saveGeometry() as hex

    def stage_choice(self, device: str) -> StageChoice:
        return StageChoice(matting=self.matting, matting_model=self.matting_model, blend=self.blend,
                           harmonizer=self.harmonizer, harmonizer_weights=self.harmonizer_weights,
                           strength=self.strength, keep_bright=self.keep_bright, device=device,
                           matte=MatteOptions(smoothing_s=self.smoothing_s, refine=self.refine))


def _valid(name: str, value: object, default: object) -> object:
    """``value`` in the setting's type, or raise ValueError."""
    if value is None and name in _NULLABLE:
        return None
    if isinstance(default, bool) or name in _NULLABLE or isinstance(default, str):
        kind = bool if isinstance(default, bool) else str
        if isinstance(value, kind):
            return value
    elif isinstance(default, float):
        low, high = _RANGES[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high:
            return float(value)
    elif isinstance(default, tuple):
        if (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 7680 for v in value)):
            return tuple(value)
    elif isinstance(default, list):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(dict.fromkeys(value))
    raise ValueError(name)


def from_dict(data: dict) -> tuple[Settings, list[str]]:
    """Settings from parsed JSON, and the names of the values that were invalid (reset)."""
    settings, invalid = Settings(), []
    for f in fields(Settings):
        if f.name not in data:
            continue
        try:
            setattr(settings, f.name, _valid(f.name, data[f.name], getattr(settings, f.name)))
        except ValueError:
            invalid.append(f.name)
    if settings.view not in VIEWS:
        settings.view = "output"
        invalid.append("view")
    if settings.device not in DEVICES:
        settings.device = "auto"
        invalid.append("device")
    return settings, invalid


def device_problem(name: str) -> str | None:
    """Why the device ``name`` (one of DEVICES) cannot run on this machine, or None when it can."""
    if name != "cuda":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return "this PyTorch build has no CUDA support; install a CUDA build of PyTorch to use the GPU"
    return "PyTorch finds no CUDA GPU on this machine; check that the NVIDIA driver is installed"


def settings_path() -> Path:
    return config_dir() / "settings.json"


class SettingsStore:
    """Loads and saves ``Settings``; ``path`` None keeps them in memory only (screenshots)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        #: One sentence for the user when the file could not be used as it was, else None.
        self.notice: str | None = None

    def load(self) -> Settings:
        if self.path is None or not self.path.exists():
            return Settings()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            try:
                os.replace(self.path, bad)
                kept = f"it was kept as {bad}"
            except OSError:
                kept = "it could not be moved aside"
            log.warning("settings file %s is damaged (%s)", self.path, exc)
            self.notice = f"Your settings file was damaged ({kept}); the defaults are used."
            return Settings()
        settings, invalid = from_dict(data)
        if invalid:
            self.notice = f"Some saved settings were invalid and were reset: {', '.join(invalid)}."
        return settings

    def save(self, settings: Settings) -> None:
        if self.path is None:
            return
        text = json.dumps(asdict(settings), indent=2, sort_keys=True)
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:  # a full disk must not take the app down
            log.warning("could not save settings to %s: %s", self.path, exc)
