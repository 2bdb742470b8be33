"""Real footage laid out like DAVIS 2016: reference soft mattes and the pipeline's mattes, in stream order.

A sequence folder holds ``video.mp4`` and ``masks/NNNNN.png`` (``00000.png`` is frame 0; 255 = the
person with what they hold or push), read by :func:`models.training.evaluate_footage.read_clip`. The team's
copy and its split are described in ``eval/real-footage/README.md`` of the shared folder; commands take the
folder as an argument.

* **Reference layer** (:func:`reference_layer`): the binary annotation becomes a trimap by erosion and
  dilation (:data:`REFERENCE_BAND` of the long side each way, 3 px at 854×480), closed-form matting
  solves the band and ML foreground estimation gives the person's own edge colour
  (:func:`models.training.blend_data.matte_person`), in the box around the outline. The band is narrow
  because the annotation is good to a few pixels and a wider one lets closed-form matting lose
  low-contrast parts the annotation has (at 6 px the light cap brim of ``hike`` against the pale scree).
* **The pipeline's mattes** (:func:`pipeline_mattes`): every frame goes through the matting model and a
  fresh :class:`MattePostprocess` with its default options, in order and with the file's timestamps,
  so temporal smoothing and whatever else carries over between frames act as they do live; every n-th is
  handed out.
* **Shots** (:func:`footage_shots`): both together, at a blend's working size, for training a blend on
  real matte errors (the sequences the split allows, :data:`TRAINING_SEQUENCES`).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.frame import Frame
from models.matting.base import Matte, Matting
from models.matting.postprocess import MattePostprocess
from models.training.blend_data import Foreground, matte_person
from models.training.evaluate_footage import Clip, read_clip

#: The DAVIS sequences kept for evaluation only (the folder's split; the other six may train or calibrate).
EVALUATION_SEQUENCES = ("breakdance", "dance-twirl", "hike", "lucia", "parkour", "swing", "tennis")
#: The six the split allows for training (and calibration).
TRAINING_SEQUENCES = ("breakdance-flare", "dance-jump", "hockey", "kite-walk", "rollerblade", "stroller")
REFERENCE_BAND = 0.004  # half-width of the trimap's unknown band around the annotation (× long side)


def sequence_clips(root: Path, names: Sequence[str]) -> list[Clip]:
    """The sequences ``names`` under ``root`` (the real-footage folder holding ``davis/``, or ``davis/`` itself)."""
    base = root / "davis" if (root / "davis").is_dir() else root
    missing = [name for name in names if not (base / name / "video.mp4").is_file()]
    if missing:
        raise FileNotFoundError(f"{base} has no sequence {', '.join(missing)} (a folder with video.mp4 and masks/)")
    return [Clip(name, base / name / "video.mp4", base / name / "masks") for name in names]


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


def pipeline_mattes(clip: Clip, matting: Matting, every: int) -> Iterator[tuple[Frame, Matte, np.ndarray]]:
    """(frame, matte, annotation as float32 0/1) of frames 0, ``every``, 2·``every``, …: the matte the pipeline
    would hand a blend, every frame of the clip having gone through ``matting`` and the default post-processing
    in order."""
    matting.reset()
    post = MattePostprocess()
    for frame, mask in read_clip(clip):
        matte = post(frame, matting.coarse(frame))
        if frame.index % every == 0:
            if mask is None:
                raise FileNotFoundError(f"{clip.masks} has no annotation {frame.index:05d}.png")
            yield frame, matte, mask.astype(np.float32)


@dataclass(frozen=True)
class Shot:
    """A real frame with what the pipeline gave a blend for it and what the blend should have made of it:
    ``rgb`` the camera frame (uint8 H×W×3), ``matte`` the pipeline's α and ``excluded`` (1 where its
    post-processing decided the background's), float32 H×W, and the ``reference`` layer (:func:`reference_layer`)."""

    rgb: np.ndarray
    matte: np.ndarray
    excluded: np.ndarray
    reference: Foreground


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return image if image.shape[1::-1] == size else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def footage_shots(clips: Sequence[Clip], matting: Matting, every: int, long_side: int) -> list[Shot]:
    """:class:`Shot` of frames 0, ``every``, … of each clip with a person in view, made at the clip's size
    (as the evaluation makes its references) and reduced to ``long_side``."""
    shots = []
    for clip in clips:
        for frame, matte, mask in pipeline_mattes(clip, matting, every):
            if not mask.any():
                continue
            w, h = frame.size
            scale = long_side / max(w, h)
            size = (round(w * scale), round(h * scale))
            reference = reference_layer(frame.rgb, mask)
            excluded = matte.excluded_at((w, h))
            excluded = np.zeros((h, w), np.float32) if excluded is None else excluded.astype(np.float32)
            small_reference = Foreground(_shrink(reference.rgb, size), _shrink(reference.alpha, size), True)
            shots.append(Shot(_shrink(frame.rgb, size), _shrink(np.asarray(matte.alpha, np.float32), size),
                              (_shrink(excluded, size) > 0.5).astype(np.float32), small_reference))
    return shots
