"""Full-body framing: MediaPipe's selfie model joined with the person segmentation of its pose model.

The selfie model is made for a person close to the camera. Seen whole — standing, dancing, on a
bike — a person is a small figure in its 256×256 view, and it loses legs, arms and whole torsos.
MediaPipe's pose model (BlazePose GHUM, Bazarevsky et al. 2020; ``pose_landmark_full`` in the
mediapipe wheel) first finds one body, then segments the crop around it, so it sees a distant
person at the crop's resolution. It follows one person only, and misses a body it cannot find
(upside down, in a crowd).

The union of the two, ``α = max(α_selfie, α_pose)``, keeps everything the selfie model finds
(a second person, an object held out) and adds the body the pose model sees. In video mode the pose
model tracks its body from frame to frame; :meth:`MediaPipeBody.reset` starts it afresh.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from models.matting.base import MattingModelError
from models.matting.mediapipe_selfie import MediaPipeSelfie
from models.matting.mediapipe_selfie import _check as _selfie_check
from models.ops.native_logs import quiet_native_logs
from models.registry import register

#: BlazePose's landmark numbers of the hips.
LEFT_HIP, RIGHT_HIP = 23, 24
NO_POSE_MODEL = "this mediapipe ships no pose model (pose_landmark_full.tflite); use --matting mediapipe"


def bundled_pose_model() -> Path | None:
    """The pose landmark model (with its segmentation output) bundled in the installed mediapipe, if any."""
    import mediapipe

    path = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    return path if path.is_file() else None


def _check() -> str | None:
    problem = _selfie_check()
    return NO_POSE_MODEL if problem is None and bundled_pose_model() is None else problem


class PoseGraph:
    """MediaPipe's pose graph: tracking from frame to frame (``video``) or finding the body afresh in every
    image, with or without its person segmentation. Its set-up messages are silenced: on creation, and until
    the first body it finds (fd 2 is the process's, so only until then: other threads' messages must not
    vanish every frame)."""

    def __init__(self, video: bool = True, segmentation: bool = True) -> None:
        import mediapipe as mp

        with quiet_native_logs():
            # Complexity 1 is pose_landmark_full, the one pose model the wheel ships (0 and 2 are downloads).
            # MediaPipe's own mask smoothing is off: the post-processing smooths α in time, once.
            self._graph = mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1,
                                                 enable_segmentation=segmentation, smooth_segmentation=False)
            # The graph sets its models up on its first frame and logs it; one blank frame does it here.
            self._graph.process(np.zeros((64, 64, 3), np.uint8))
        self._quiet = True

    def process(self, rgb: np.ndarray):
        """MediaPipe's answer for ``rgb`` (uint8 H×W×3, contiguous): landmarks and, when asked for, the mask."""
        with quiet_native_logs() if self._quiet else contextlib.nullcontext():
            result = self._graph.process(rgb)
        self._quiet = self._quiet and result.pose_landmarks is None
        return result

    def close(self) -> None:
        self._graph.close()


def hips_visibility(result) -> float:
    """How visible the pose model finds both hips (the smaller of their visibility scores; 0 without a body)."""
    if result.pose_landmarks is None:
        return 0.0
    points = result.pose_landmarks.landmark
    return min(points[LEFT_HIP].visibility, points[RIGHT_HIP].visibility)


@register("matting", "mediapipe-body",
          "MediaPipe selfie and pose segmentation joined, for a whole body in view (CPU, slower)", check=_check)
class MediaPipeBody(MediaPipeSelfie):
    """Person probability: the larger of MediaPipe's selfie and pose segmentations. ``model_path`` replaces
    the selfie model (the general one by default), as for ``mediapipe``."""

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu") -> None:
        if bundled_pose_model() is None:
            raise MattingModelError(NO_POSE_MODEL)
        super().__init__("general", model_path, device)
        self._pose = PoseGraph()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pose")

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        """Person confidence (float32, the size of ``rgb``): the larger of the two models' answers."""
        return self.joined(rgb)[0]

    def joined(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(the larger of the two models' answers, how visible the pose model finds both hips: 0–1)."""
        # The two graphs run side by side: the selfie model's few milliseconds hide behind the pose model's.
        pose = self._worker.submit(self._pose_answer, np.ascontiguousarray(rgb))
        selfie = MediaPipeSelfie.segment(self, rgb)
        mask, hips = pose.result()
        return (selfie if mask is None else np.maximum(selfie, mask)), hips

    def _pose_answer(self, rgb: np.ndarray) -> tuple[np.ndarray | None, float]:
        result = self._pose.process(rgb)
        return result.segmentation_mask, hips_visibility(result)

    def reset(self) -> None:
        self._pose.close()
        self._pose = PoseGraph()

    def close(self) -> None:
        self._worker.shutdown()
        super().close()
        self._pose.close()
