"""Where the faces and hands are: masks from MediaPipe's face-mesh and hand-landmark models.

Viewers look at faces and hands first, so they are where a matte must never fail. Both models
ship inside the mediapipe wheel (its legacy ``solutions``), so they run offline. In video mode
each model detects once and then tracks its landmarks from frame to frame, which is what
makes them cheap enough to run beside the matting (a tracked face ≈ 5 ms, hands ≈ 15 ms on a
2-core CPU at 720p).

* A **face** is the convex hull of the face-mesh oval (forehead to chin, cheek to cheek),
  eroded by ``FACE_ERODE`` of its width so that the hull's straight chords across the curved
  outline, and the landmarks' jitter, never reach the background.
* A **hand** is its palm polygon (wrist and the four knuckles) plus each finger's bones drawn
  ``FINGER_WIDTH`` of the palm's length thick: the convex hull of a spread hand would include
  the background between the fingers.
"""
from __future__ import annotations

import contextlib
import functools
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np

from models.ops.native_logs import quiet_native_logs
from models.ops.regions import Box
from models.ops.threads import LowPriorityJob

#: Erosion of a face hull, as a share of the face's width.
FACE_ERODE = 0.04
#: Thickness of a finger's bones, as a share of the palm's length (wrist to middle knuckle): a
#: finger is about a fifth of it wide; two thirds of that keeps the stroke inside the finger.
FINGER_WIDTH = 0.13
PALM = (0, 1, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
MAX_PEOPLE = 2


@functools.cache
def face_oval() -> np.ndarray:
    """Indices of the face mesh's oval landmarks."""
    import mediapipe as mp

    return np.unique(np.array(sorted(mp.solutions.face_mesh.FACEMESH_FACE_OVAL)).ravel())


@dataclass(frozen=True)
class Parts:
    """Bool H×W masks, one per face and one per hand found in a frame."""

    faces: list[np.ndarray]
    hands: list[np.ndarray]


def _points(landmarks, size: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates (N×2 float32) of normalised landmarks in a frame of ``size`` = (w, h)."""
    return np.array([(p.x * size[0], p.y * size[1]) for p in landmarks.landmark], np.float32)


def face_mask(points: np.ndarray, size: tuple[int, int], erode: float = FACE_ERODE) -> np.ndarray:
    """The face of face-mesh landmarks ``points`` (pixels) as a bool mask of ``size`` = (w, h): the
    oval's convex hull, eroded by ``erode`` of the face's width."""
    hull = cv2.convexHull(points[face_oval()])
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    r = round(erode * float(np.ptp(hull[:, 0, 0])))
    if r < 1:
        return mask.astype(bool)
    return cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)


def hand_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The hand of 21 hand landmarks ``points`` (pixels) as a bool mask of ``size`` = (w, h)."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(PALM)]).astype(np.int32)], 1)
    thickness = max(1, round(FINGER_WIDTH * float(np.linalg.norm(points[9] - points[0]))))
    for finger in FINGERS:
        cv2.polylines(mask, [np.round(points[list(finger)]).astype(np.int32)], False, 1, thickness)
    return mask.astype(bool)


class PartFinder:
    """Faces and hands of a video, frame by frame (``video=True``: tracked between frames) or of stills."""

    def __init__(self, faces: bool = True, hands: bool = True, video: bool = True,
                 face_erode: float = FACE_ERODE) -> None:
        import mediapipe as mp

        self.face_erode = face_erode
        with quiet_native_logs():
            self._faces = mp.solutions.face_mesh.FaceMesh(static_image_mode=not video,
                                                          max_num_faces=MAX_PEOPLE) if faces else None
            self._hands = mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=2 * MAX_PEOPLE,
                                                   model_complexity=1) if hands else None
        self._quiet = True  # the first inference logs its delegate set-up

    def __call__(self, rgb: np.ndarray) -> Parts:
        """The faces and hands in ``rgb`` (uint8 H×W×3), in stream order when tracking."""
        size = (rgb.shape[1], rgb.shape[0])
        with quiet_native_logs() if self._quiet else contextlib.nullcontext():
            faces = (self._faces.process(rgb).multi_face_landmarks or []) if self._faces else []
            hands = (self._hands.process(rgb).multi_hand_landmarks or []) if self._hands else []
        self._quiet = False
        return Parts([face_mask(_points(f, size), size, self.face_erode) for f in faces],
                     [hand_mask(_points(h, size), size) for h in hands])

    def close(self) -> None:
        for model in (self._faces, self._hands):
            if model is not None:
                model.close()


#: Seconds between two runs of the landmark models within a stream. Both models take about 25 ms per
#: 720p frame on a 2-core CPU, more than the rest of the matting; in between, each part is tracked.
LANDMARK_INTERVAL_S = 0.15
#: Seconds between two runs of the hand model while its last run found no hand. Without a hand to follow,
#: each run is the palm detector on the whole frame (~23 ms of CPU at 720p on a 2-core CPU, whatever the
#: frame's size), the guards' largest cost on a call where the hands are out of view; a hand that comes
#: into view is then found within 0.3 s instead of 0.15 s (the selfie model's matte has it meanwhile).
HAND_SEARCH_S = 0.3
#: How far a part is searched around its last place on the frame's small grey copy, as a share of its
#: box's size (a face crossing the frame in a second moves ~10 % of its width a frame).
SEARCH_SHARE = 0.3
#: A part whose best match is weaker than this (normalised correlation) is lost until the next run.
TRACK_MIN_SCORE = 0.5


@dataclass
class Tracked:
    """A face or hand found by the landmark models and followed since: its mask (bool, full size,
    cropped to ``box``), where it is now (``box`` = x, y, w, h at full size), its grey template at the
    tracking size from the frame where it was found, and where that template now sits (``at``)."""

    mask: np.ndarray
    box: tuple[int, int, int, int]
    template: np.ndarray
    at: tuple[int, int]


def start_tracking(mask: np.ndarray, grey: np.ndarray) -> Tracked | None:
    """A part's :class:`Tracked` from its full-size ``mask`` and the frame's small ``grey`` copy;
    None for a part too small to track on that copy."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    scale = grey.shape[1] / mask.shape[1]
    sx, sy, sw, sh = (round(v * scale) for v in (x, y, w, h))
    if sw < 6 or sh < 6:
        return None
    return Tracked(mask[y:y + h, x:x + w].copy(), (x, y, w, h), grey[sy:sy + sh, sx:sx + sw].copy(), (sx, sy))


def follow_part(part: Tracked, grey: np.ndarray, full_width: int) -> Tracked | None:
    """``part`` moved to where its template matches best in ``grey`` near its last place (normalised
    cross-correlation); None when it is lost."""
    th, tw = part.template.shape
    pad = max(4, round(SEARCH_SHARE * max(tw, th)))
    x0, y0 = max(0, part.at[0] - pad), max(0, part.at[1] - pad)
    x1, y1 = min(grey.shape[1], part.at[0] + tw + pad), min(grey.shape[0], part.at[1] + th + pad)
    if x1 - x0 < tw or y1 - y0 < th:
        return None
    scores = cv2.matchTemplate(grey[y0:y1, x0:x1], part.template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (mx, my) = cv2.minMaxLoc(scores)
    if best < TRACK_MIN_SCORE:
        return None
    at = (x0 + mx, y0 + my)
    scale = full_width / grey.shape[1]
    x, y, w, h = part.box
    moved = (x + round((at[0] - part.at[0]) * scale), y + round((at[1] - part.at[1]) * scale), w, h)
    return Tracked(part.mask, moved, part.template, at)


#: Side of the box filter whose ramp falls away outside a painted part's outline (0.4, then 0.2).
RAMP = 5


def paint_box(parts: list[Tracked], size: tuple[int, int]) -> tuple[Box, np.ndarray] | None:
    """The parts' masks pasted at their boxes into a frame of ``size`` = (w, h), as (the box around them and
    their ramp, float32 image of that box), None when none lands in the frame: 1 on every pixel of a part,
    and outside them a two-pixel ramp (0.4, 0.2 beside a straight outline; more only in a concave corner,
    between two fingers) so that the raised matte has no hard step. Outside the box the image is 0.

    The ramp lies outside: across the outline it would leave a part's own rim, and the whole of a
    finger's few-pixel stroke, below 1 (a 5-pixel box over a 2-pixel stroke is 0.4), which is not the
    person where the matte had it as background."""
    inside = [(part, max(0, -part.box[0]), max(0, -part.box[1]), min(part.box[2], size[0] - part.box[0]),
               min(part.box[3], size[1] - part.box[1])) for part in parts]
    inside = [(part, cx0, cy0, cx1, cy1) for part, cx0, cy0, cx1, cy1 in inside if cx1 > cx0 and cy1 > cy0]
    if not inside:
        return None
    left = min(part.box[0] + cx0 for part, cx0, _, _, _ in inside)
    top = min(part.box[1] + cy0 for part, _, cy0, _, _ in inside)
    right = max(part.box[0] + cx1 for part, _, _, cx1, _ in inside)
    bottom = max(part.box[1] + cy1 for part, _, _, _, cy1 in inside)
    # The ramp reaches RAMP // 2 beyond the parts; a margin of twice that keeps the box's reflected border in
    # zeros, as the whole frame's would be, so the box's blur is the whole frame's.
    r = 2 * (RAMP // 2)
    x0, y0 = max(0, left - r), max(0, top - r)
    box = slice(y0, min(size[1], bottom + r)), slice(x0, min(size[0], right + r))
    patch = np.zeros((box[0].stop - y0, box[1].stop - x0), np.float32)
    for part, cx0, cy0, cx1, cy1 in inside:
        x, y = part.box[0] - x0, part.box[1] - y0
        region = patch[y + cy0:y + cy1, x + cx0:x + cx1]
        np.maximum(region, part.mask[cy0:cy1, cx0:cx1], out=region)
    np.maximum(patch, cv2.blur(patch, (RAMP, RAMP)), out=patch)
    return box, patch


def whole_frame(painted: tuple[Box, np.ndarray] | None, size: tuple[int, int]) -> np.ndarray:
    """A :func:`paint_box` result (None: nothing painted) as a whole float32 frame of ``size`` = (w, h)."""
    out = np.zeros((size[1], size[0]), np.float32)
    if painted is not None:
        out[painted[0]] = painted[1]
    return out


class PartWatch:
    """One landmark model (faces or hands) over a stream: run every ``interval_s`` seconds of media time,
    its parts tracked in between, and every ``search_s`` seconds (default ``interval_s``) while its last run
    found nothing; a frame that does not follow the previous one is searched from scratch. ``phase`` (a
    share of the interval) moves the runs within a stream later by that much after such a search. The
    model is made at first use.

    In a live stream (``live``) every run after the stream's first goes to a worker thread at a lower
    priority, on a model made there (MediaPipe's graph runs on threads of its own, which start at their
    creator's priority). A run takes 5–25 ms of CPU at 720p (the face model ~6; the hand model ~25, its palm
    detector looking at the whole frame on every run, since it looks for more hands than it follows), and in
    place it held up the frame loop for that long on one frame in four or five.
    What a run finds is taken up at the first frame after it ends, a frame or two later, and followed from
    the frame it looked at; meanwhile the parts found before are followed. A file renders with every run in
    place, the same every time."""

    def __init__(self, faces: bool, hands: bool, interval_s: float, phase: float = 0.0,
                 search_s: float | None = None, runner: Executor | None = None) -> None:
        self.faces, self.hands, self.interval_s, self.phase = faces, hands, interval_s, phase
        self.search_s = interval_s if search_s is None else search_s
        self._finders: dict[tuple[bool, bool], PartFinder] = {}  # by video mode and priority (_finder)
        self._parts: list[Tracked] = []
        self._found_at: float | None = None  # timestamp the runs are counted from
        self._found_any = False  # whether the last run found a part
        # Live runs: by default on a thread of its own, made at first use; the context is (grey, time) of the frame.
        self._run = LowPriorityJob("landmarks", runner)

    def __call__(self, rgb: np.ndarray, grey: np.ndarray, timestamp: float, follows: bool,
                 live: bool = False) -> list[Tracked]:
        """The parts in ``rgb`` (``grey``: its reduced grey copy), found or followed."""
        if self._run.done() and follows:
            self._take_run()
        elif self._run.running and follows:
            return self._follow(grey, rgb.shape[1])
        wait = self.interval_s if self._found_any else self.search_s
        due = (not follows or self._found_at is None or timestamp < self._found_at
               or timestamp - self._found_at >= wait)
        if not due:
            return self._follow(grey, rgb.shape[1])
        if not follows:
            self._drop(True)
        finder = self._finder(follows, live and follows)
        if live and follows and self._found_at is not None:
            self._run.submit(finder, rgb.copy(), context=(grey, timestamp))
            return self._follow(grey, rgb.shape[1])
        self._found(finder(rgb), grey, timestamp - (0.0 if follows else self.phase * self.interval_s))
        return self._parts

    def _finder(self, video: bool, low: bool) -> PartFinder:
        """The model in ``video`` mode; ``low``: the one whose runs go to the worker, made there so that its
        graph's threads run below the frame loop (:meth:`~models.ops.threads.LowPriorityJob.make`)."""
        finder = self._finders.get((video, low))
        if finder is None:
            make = functools.partial(PartFinder, self.faces, self.hands, video=video, face_erode=0.0)
            finder = self._finders[video, low] = self._run.make(make) if low else make()
        return finder

    def _found(self, found: Parts, grey: np.ndarray, at: float) -> None:
        """A run's answer on the frame of ``grey``, taken at ``at``."""
        self._found_any = bool(found.faces or found.hands)
        self._parts = [t for m in found.faces + found.hands if (t := start_tracking(m, grey)) is not None]
        self._found_at = at

    def _take_run(self) -> None:
        """The finished run's answer, as at the frame it looked at (its parts are followed from there)."""
        found, (looked_at, at) = self._run.take()
        self._found(found, looked_at, at)

    def _follow(self, grey: np.ndarray, full_width: int) -> list[Tracked]:
        self._parts = [t for p in self._parts if (t := follow_part(p, grey, full_width)) is not None]
        return self._parts

    def _drop(self, video: bool) -> None:
        self._run.settle()  # a run on the worker ends before its model is closed
        for low in (False, True):
            finder = self._finders.pop((video, low), None)
            if finder is not None:
                finder.close()

    def reset(self) -> None:
        """Forget the tracked parts (a new source or scene)."""
        self._drop(True)
        self._parts, self._found_at, self._found_any = [], None, False

    def close(self) -> None:
        self.reset()
        self._drop(False)
        self._run.close()


class PartGuard:
    """Faces and hands stay the person: the matte is raised to 1 inside each face and hand found in
    the frame — the face oval's whole hull (the oval's landmarks run along the face's outline), and a
    hand's palm and finger bones (:func:`hand_mask`, inside the hand) — so nothing around them is
    raised.

    The landmark models see the full frame (their landmarks come from their own crop around each
    part, which a reduced copy would make coarser: a face's top moved by ~10 px in 720p). Within a
    stream each runs every ``interval_s`` seconds of media time (:class:`PartWatch`), the hand model
    half an interval after the face model: run on the same frame, the two (~25 ms of CPU) stalled the
    frame loop's other half, which waits for the matte, every 0.15 s. Each part is refreshed as often
    as before; on real footage only the hand figure moved, within what the phase of the runs alone
    moves it by (``evaluate_footage``)."""

    def __init__(self, faces: bool = True, hands: bool = True, interval_s: float = LANDMARK_INTERVAL_S,
                 hand_search_s: float = HAND_SEARCH_S, runner: Executor | None = None) -> None:
        self._watches = ([PartWatch(True, False, interval_s, runner=runner)] if faces else []) + (
            [PartWatch(False, True, interval_s, phase=0.5, search_s=max(interval_s, hand_search_s),
                       runner=runner)] if hands else [])

    def __call__(self, rgb: np.ndarray, grey: np.ndarray, timestamp: float,
                 follows: bool = True, live: bool = False) -> tuple[Box, np.ndarray] | None:
        """The parts of ``rgb`` painted (:func:`paint_box`: a box of the frame and the mask there, 1 inside the
        parts), None when there are none. ``grey``: a reduced grey copy of ``rgb`` to track the parts on;
        ``follows``: the frame continues the stream of the previous call; ``live``: frames come in real time
        (runs after a stream's first go to a worker, :class:`PartWatch`)."""
        parts = [t for watch in self._watches for t in watch(rgb, grey, timestamp, follows, live)]
        return paint_box(parts, (rgb.shape[1], rgb.shape[0]))

    def reset(self) -> None:
        """Forget the tracked parts (a new source or scene)."""
        for watch in self._watches:
            watch.reset()

    def close(self) -> None:
        for watch in self._watches:
            watch.close()
