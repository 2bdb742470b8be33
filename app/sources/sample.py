"""The built-in sample clip, for machines without a webcam.

No portrait video ships in any registry package, so the clip is made once
from a real public-domain photograph that ships with matplotlib: Grace
Hopper's official portrait (U.S. Navy). The portrait is placed in a wide
frame filled with a blurred copy of itself, then hand-held camera motion,
a slow lighting and white-balance drift and sensor noise are added. It is
cached in the app's cache folder.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from app.imaging import cover_fit, read_rgb
from models.paths import cache_dir
from models.ops.files import atomic_path

SAMPLE_VERSION = 1
SIZE = (1280, 720)
FPS = 30.0
SECONDS = 5.0


def portrait_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def _base_frame(portrait: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Portrait centred in a wide frame, the sides filled with a blurred copy of it."""
    w, h = size
    fill = cv2.GaussianBlur(cover_fit(portrait, size), (0, 0), sigmaX=w / 40)
    ph = int(h * 1.04)
    pw = round(portrait.shape[1] * ph / portrait.shape[0])
    person = cv2.resize(portrait, (pw, ph), interpolation=cv2.INTER_AREA)
    x0 = (w - pw) // 2
    # Feather the portrait's left and right borders into the fill.
    ramp = np.clip(np.minimum(np.arange(pw), np.arange(pw)[::-1]) / (pw * 0.08), 0, 1).astype(np.float32)
    canvas = fill.astype(np.float32)
    region = canvas[:, x0:x0 + pw]
    region += (person[:h].astype(np.float32) - region) * ramp[None, :, None]
    return np.clip(canvas, 0, 255).astype(np.uint8)


def render_frame(base: np.ndarray, i: int, noise: np.ndarray) -> np.ndarray:
    """Frame ``i``: camera shake and zoom, lighting and white-balance drift, noise."""
    h, w = base.shape[:2]
    t = i / FPS
    dx = 14 * math.sin(2 * math.pi * t / 3.1) + 4 * math.sin(2 * math.pi * t / 0.9)
    dy = 7 * math.sin(2 * math.pi * t / 2.3)
    zoom = 1.03 + 0.025 * math.sin(2 * math.pi * t / 4.7)
    angle = 0.8 * math.sin(2 * math.pi * t / 3.7)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += (dx, dy)
    frame = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + 0.12 * math.sin(2 * math.pi * t / SECONDS)
    warm = 0.05 * math.sin(2 * math.pi * t / (SECONDS * 0.8))
    scale = np.array([gain * (1 + warm), gain, gain * (1 - warm)], np.float32)
    out = frame.astype(np.float32) * scale + noise
    return np.clip(out, 0, 255).astype(np.uint8)


def sample_clip_path() -> Path:
    """The cached sample clip, rendered on first use."""
    path = cache_dir() / f"sample-v{SAMPLE_VERSION}-{SIZE[0]}x{SIZE[1]}.mp4"
    if not path.is_file():
        _render(path)
    return path


def _render(path: Path) -> None:
    base = _base_frame(read_rgb(portrait_path()), SIZE)
    rng = np.random.default_rng(7)
    noise_bank = [rng.normal(0, 2.5, base.shape).astype(np.float32) for _ in range(4)]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
        try:
            for i in range(int(FPS * SECONDS)):
                rgb = render_frame(base, i, noise_bank[i % len(noise_bank)])
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
