"""The selfie model alone while the person is close to the camera; joined by the pose model while a whole body
is in view.

Close to the camera — at a desk, on a call — the selfie model sees the person large and keeps them whole,
and MediaPipe's pose model (:mod:`models.matting.mediapipe_body`) would add little for six times the
cost. Seen whole, a person is a small figure to the selfie model, which loses legs, arms and torsos; that
is when the pose model's segmentation of the crop around the body pays. BlazePose says which case it is:
its hips are in view (its own visibility score) only when the camera sees the body below the waist.

So the selfie model runs on every frame, and once every ``BODY_PROBE_S`` seconds of the stream's own
clock the pose model looks for a body (finding it afresh, without segmentation); when it finds none
although the selfie model sees a person, its detector missed (motion blur, an unusual pose: a few
frames), and it looks again after ``BODY_RETRY_S``, twice as long after each further miss, up to the
probe interval. While both hips are visible the pose model segments every frame and the matte is the
union of the two answers, as ``mediapipe-body``; after ``BODY_LEAVE_S`` seconds without visible hips it
goes back to the selfie model alone. Every decision comes from frames and their timestamps, so a file
renders the same every time.

In a live stream (:attr:`~models.matting.base.Matting.live`) a look after the stream's first runs on a worker
thread at a lower priority, on a pose graph made there so that the graph's own threads run at that priority
too: in place its ~35 ms held up the frame loop's matting half, which sets the frame rate, once a second.
Its answer is taken up at the first frame after it ends, as of the frame it looked at.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from models.frame import Frame
from models.matting.base import Matte
from models.matting.mediapipe_body import MediaPipeBody, PoseGraph, _check, hips_visibility
from models.matting.mediapipe_selfie import MediaPipeSelfie
from models.ops.threads import LowPriorityJob
from models.registry import register

#: Seconds of the stream between two looks for a whole body while the selfie model runs alone: the pose
#: model's search costs ~35 ms of CPU, so once a second is ~4 % of a core.
BODY_PROBE_S = 1.0
#: Seconds before the next look after one that found no body while the selfie model saw a person (at least
#: ``PERSON_SHARE`` of its matte above 0.5), doubled after each further such look up to ``BODY_PROBE_S``: a
#: miss that lasts (the head out of view, the back to the camera) is no longer a passing one. A close-up
#: still finds a body (without hips) and an empty room no person, so neither pays for the quicker looks.
BODY_RETRY_S = 0.2
PERSON_SHARE = 0.01
#: Both hips at least this visible to the pose model: the body is in view below the waist. BlazePose
#: scores a hip it sees at ~1.0 and one below the frame's edge near 0.
HIPS_VISIBLE = 0.9
#: Seconds without visible hips before the pose model stops: a body that turns or bends for a moment
#: stays joined.
BODY_LEAVE_S = 2.0


@dataclass
class BodyWatch:
    """When the pose model looks for a body, and whether it is joined, on the stream's own clock (seconds)."""

    probed_at: float | None = None  # the last look for a body
    misses: int = 0  # the last looks in a row that found no body although the selfie model saw a person
    hips_at: float | None = None  # when both hips were last seen; None: the selfie model runs alone

    @property
    def joined(self) -> bool:
        return self.hips_at is not None

    def probe_due(self, t: float) -> bool:
        """Whether the pose model should look for a body at ``t`` (never while it is joined)."""
        interval = min(BODY_PROBE_S, BODY_RETRY_S * 2 ** (self.misses - 1)) if self.misses else BODY_PROBE_S
        return not self.joined and (self.probed_at is None or not 0 <= t - self.probed_at < interval)

    def probed(self, t: float, hips: float, missed: bool = False) -> None:
        """The look at ``t`` found both hips this visible (0 without a body); ``missed``: it found no body
        although the selfie model saw a person."""
        self.probed_at = t
        self.misses = self.misses + 1 if missed else 0
        if hips >= HIPS_VISIBLE:
            self.hips_at = t

    def seen(self, t: float, hips: float) -> bool:
        """The joined pose model's hips at ``t``; False (and no longer joined) once they have been out of view
        for ``BODY_LEAVE_S`` seconds, or the clock went back."""
        if hips >= HIPS_VISIBLE:
            self.hips_at = t
        elif self.hips_at is not None and not 0 <= t - self.hips_at < BODY_LEAVE_S:
            self.hips_at = None
        return self.joined


@register("matting", "mediapipe-auto",
          "MediaPipe selfie segmentation, joined by its pose segmentation while a whole body is in view "
          "(default)", check=_check)
class MediaPipeAuto(MediaPipeBody):
    """``mediapipe`` close to the camera, ``mediapipe-body`` while the body is in view below the waist."""

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu") -> None:
        super().__init__(model_path, device)
        self._probe = PoseGraph(video=False, segmentation=False)  # looks in place
        self._low_probe: PoseGraph | None = None  # looks on the worker, made at the first
        self._now = 0.0  # the timestamp of the frame being matted
        self._last: np.ndarray | None = None  # the previous frame's answer
        self.watch = BodyWatch()
        self._looks = LowPriorityJob("body-probe")  # live looks; context: (the frame's time, person seen)

    def coarse(self, frame: Frame) -> Matte:
        self._now = frame.timestamp
        return super().coarse(frame)

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        t, watch = self._now, self.watch
        if self._looks.done():
            self._take_look()
        if not self._looks.running and watch.probe_due(t):
            self._look(rgb, t)
        if not watch.joined:
            alpha = MediaPipeSelfie.segment(self, rgb)
        else:
            alpha, hips = self.joined(rgb)
            if not watch.seen(t, hips):
                super().reset()  # the pose model's tracking starts afresh when a body returns
        self._last = alpha
        return alpha

    def _look(self, rgb: np.ndarray, t: float) -> None:
        """The pose model's look for a body in ``rgb`` at ``t``: in place, or live after the stream's first look on
        the worker (taken up by :meth:`_take_look`)."""
        seen = self._person_seen()
        if not (self.live and self.watch.probed_at is not None):
            result = self._probe.process(np.ascontiguousarray(rgb))
            self.watch.probed(t, hips_visibility(result), missed=result.pose_landmarks is None and seen)
            return
        if self._low_probe is None:  # made on the worker: its graph's threads run below the frame loop too
            self._low_probe = self._looks.make(lambda: PoseGraph(video=False, segmentation=False))
        self._looks.submit(self._low_probe.process, rgb.copy(), context=(t, seen))

    def _take_look(self) -> None:
        result, (t, seen) = self._looks.take()
        self.watch.probed(t, hips_visibility(result), missed=result.pose_landmarks is None and seen)

    def _person_seen(self) -> bool:
        """Whether the previous frame's answer saw a person (``PERSON_SHARE`` of it above 0.5); on a stream's
        first frame, which has none, a person is assumed: most streams start with one."""
        last = self._last
        return last is None or np.count_nonzero(last > 0.5) >= PERSON_SHARE * last.size

    def reset(self) -> None:
        self._looks.settle()
        super().reset()
        self.watch = BodyWatch()
        self._last = None

    def close(self) -> None:
        self._looks.close()
        super().close()
        self._probe.close()
        if self._low_probe is not None:
            self._low_probe.close()
