"""Real footage laid out like DAVIS 2016: frames in stream order, reference soft mattes, the pipeline's mattes.

A sequence folder holds ``video.mp4`` and ``masks/NNNNN.png`` (``00000.png`` is frame 0; 255 = the
person with what they hold or push). The team's copy and its split are described in
``eval/real-footage/README.md`` of the shared folder; commands take the folder as an argument.

* **Reference layer** (:func:`reference_layer`): the binary annotation becomes a trimap by erosion and
  dilation (:data:`REFERENCE_BAND` of the long side each way, 3 px at 854×480), closed-form matting
  solves the band and ML foreground estimation gives the person's own edge colour
  (:func:`models.training.blend_data.matte_person`), in the box around the outline. The band is narrow
  because the annotation is good to a few pixels and a wider one lets closed-form matting lose
  low-contrast parts the annotation has (at 6 px the light cap brim of ``hike`` against the pale scree).
* **The pipeline's mattes** (:func:`pipeline_mattes`): every frame goes through the matting model and a
  fresh :class:`MattePostprocess` with its default options, in order and with the file's timestamps,
  so temporal smoothing and the decision's hysteresis act as they do live; every n-th is handed out.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from models.frame import Frame
from models.matting.base import Matte, Matting
from models.matting.postprocess import MattePostprocess
from models.training.blend_data import Foreground, matte_person

#: The DAVIS sequences kept for evaluation only, and those that may train or calibrate (the folder's split).
EVALUATION_SEQUENCES = ("breakdance", "dance-twirl", "hike", "lucia", "parkour", "swing", "tennis")
TRAINING_SEQUENCES = ("breakdance-flare", "dance-jump", "hockey", "kite-walk", "rollerblade", "stroller")
REFERENCE_BAND = 0.004  # half-width of the trimap's unknown band around the annotation (× long side)


def sequence_dirs(root: Path, names: Sequence[str]) -> list[Path]:
    """The folders of ``names`` under ``root`` (the real-footage folder holding ``davis/``, or ``davis/`` itself)."""
    base = root / "davis" if (root / "davis").is_dir() else root
    missing = [name for name in names if not (base / name / "video.mp4").is_file()]
    if missing:
        raise FileNotFoundError(f"{base} has no sequence {', '.join(missing)} (a folder with video.mp4 and masks/)")
    return [base / name for name in names]


def read_frames(video: Path) -> Iterator[Frame]:
    """Every frame of ``video`` in order, with its index and media timestamp in seconds."""
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not cap.isOpened() or fps <= 0:
        cap.release()
        raise OSError(f"{video} cannot be read as a video")
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / fps)
            index += 1
    finally:
        cap.release()


def read_mask(sequence: Path, index: int) -> np.ndarray:
    """The annotation of frame ``index``: float32 H×W, 1 = the person."""
    path = sequence / "masks" / f"{index:05d}.png"
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise FileNotFoundError(f"{path} is missing or not an image")
    return (mask > 127).astype(np.float32)


def reference_layer(rgb: np.ndarray, mask: np.ndarray) -> Foreground:
    """The annotated person's soft matte and own colour (module docstring), solved in the box around the
    outline; outside it α is 0 and the colour is the frame's."""
    band = max(1, round(REFERENCE_BAND * max(rgb.shape[:2])))
    alpha, colour = np.zeros(mask.shape, np.float32), rgb.copy()
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size:
        margin = 4 * band
        box = (slice(max(0, ys.min() - margin), ys.max() + margin + 1),
               slice(max(0, xs.min() - margin), xs.max() + margin + 1))
        layer = matte_person(rgb[box], mask[box], band)
        alpha[box], colour[box] = layer.alpha, layer.rgb
    return Foreground(colour, alpha, True)


def pipeline_mattes(sequence: Path, matting: Matting, every: int) -> Iterator[tuple[Frame, Matte]]:
    """(frame, matte) of frames 0, ``every``, 2·``every``, …: the matte the pipeline would hand a blend,
    every frame of the sequence having gone through ``matting`` and the default post-processing in order."""
    matting.reset()
    post = MattePostprocess()
    for frame in read_frames(sequence / "video.mp4"):
        matte = post(frame, matting.matte(frame))
        if frame.index % every == 0:
            yield frame, matte
