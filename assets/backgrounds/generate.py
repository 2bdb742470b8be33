"""Renders the shipped backgrounds (our own procedural art, GPL-3.0-or-later like the code).

Run from the repository root: ``python assets/backgrounds/generate.py``.
Soft gradients with out-of-focus light discs, in warm and cool palettes, so
that harmonization has a visible job to do.
"""
from pathlib import Path

import cv2
import numpy as np

SIZE = (1920, 1080)
HERE = Path(__file__).parent

PALETTES = {
    # name: (top colour, bottom colour, bokeh colours), RGB
    "studio-blue": ((18, 52, 92), (70, 130, 170), [(150, 200, 255), (90, 160, 230)]),
    "sunset-warm": ((250, 150, 70), (120, 40, 60), [(255, 210, 120), (255, 160, 90)]),
    "office-bokeh": ((205, 190, 165), (120, 105, 90), [(255, 240, 200), (240, 220, 170)]),
    "forest-green": ((40, 80, 40), (110, 150, 70), [(200, 230, 140), (150, 200, 100)]),
}


def render(top, bottom, bokeh, seed: int) -> np.ndarray:
    w, h = SIZE
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = (np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t) * np.ones((1, w, 1), np.float32)
    lights = np.zeros_like(img)
    for _ in range(60):
        c = np.array(bokeh[rng.integers(len(bokeh))], np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h * 3 // 4)))
        cv2.circle(lights, centre, int(rng.integers(20, 90)), c.tolist(), -1, cv2.LINE_AA)
    lights = cv2.GaussianBlur(lights, (0, 0), 6)
    img = img * 0.8 + lights * 0.35
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1 - 0.35 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    img *= vignette[..., None]
    img += rng.normal(0, 1.5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    for i, (name, (top, bottom, bokeh)) in enumerate(PALETTES.items()):
        rgb = render(top, bottom, bokeh, seed=i)
        cv2.imwrite(str(HERE / f"{name}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
