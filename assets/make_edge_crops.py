"""Render ``assets/edges-before-after.png``: the sample clip's outline before and after the edge work.

    python assets/make_edge_crops.py [--blend learned] [--out assets/edges-before-after.png]

Frame 0 of the sample clip over a shipped background, MediaPipe matting, no harmonizer.
Before: the previous release's matte post-processing (grey-guided filter only) and
linear blending. After: the matte that holds together (``models/matting/solidify.py``,
colour-guided feathering) and the chosen blend. Crops, left to right: the cap, the flag
pole beside the head, the flag's stars at the shoulder; before on top, after below.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.backgrounds import SHIPPED_DIR  # noqa: E402
from app.imaging import cover_fit, read_rgb  # noqa: E402
from app.sources.sample import sample_clip_path  # noqa: E402
from models import registry  # noqa: E402
from models.frame import Frame  # noqa: E402
from models.matting.postprocess import MatteOptions, MattePostprocess  # noqa: E402
from models.ops.files import atomic_path  # noqa: E402
from models.stream import StreamState  # noqa: E402

#: (x, y, w, h) at 1280×720: the cap, the pole beside the head, the stars at the shoulder.
CROPS = ((500, 0, 300, 170), (430, 120, 170, 220), (330, 330, 220, 220))
SCALE = 1.5


def first_frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(sample_clip_path()))
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise SystemExit("the sample clip could not be read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def render(rgb: np.ndarray, background: np.ndarray, matte_options: MatteOptions, blend_name: str) -> np.ndarray:
    matting = registry.create("matting", "mediapipe")
    frame = Frame(rgb, 0, 0.0)
    matte = MattePostprocess(matte_options)(frame, matting.matte(frame))
    blend = registry.create("blend", blend_name)
    out = blend.blend(frame, matte, background, StreamState(live=False)).image
    matting.close()
    blend.close()
    return out


def strip(image: np.ndarray) -> np.ndarray:
    tiles = []
    for x, y, w, h in CROPS:
        tile = cv2.resize(image[y:y + h, x:x + w], None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
        tiles.append(cv2.copyMakeBorder(tile, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
             for t in tiles]
    return np.concatenate(tiles, axis=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blend", default="learned")
    p.add_argument("--background", default=str(SHIPPED_DIR / "forest-green.jpg"))
    p.add_argument("--out", type=Path, default=ROOT / "assets" / "edges-before-after.png")
    args = p.parse_args()
    rgb = first_frame()
    background = cover_fit(read_rgb(args.background), (rgb.shape[1], rgb.shape[0]))
    before = render(rgb, background, MatteOptions(smoothing_s=0, solidify=False, colour_guide=False), "linear")
    after = render(rgb, background, MatteOptions(smoothing_s=0), args.blend)
    sheet = np.concatenate([strip(before), strip(after)], axis=0)
    with atomic_path(args.out) as tmp:
        tmp.write_bytes(cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
