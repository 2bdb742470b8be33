"""Faces and hands: their masks, and a part followed between two runs of the landmark models."""
from __future__ import annotations

import threading
from concurrent.futures import Executor, Future

import cv2
import numpy as np
import pytest

from models.matting import landmarks
from models.matting.landmarks import follow_part, hand_mask, paint_box, start_tracking, whole_frame


def paint(parts: list, size: tuple[int, int]) -> np.ndarray:
    """The painted parts as a whole frame, as the device path takes them."""
    return whole_frame(paint_box(parts, size), size)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w), dtype=np.uint8)


def test_a_tracked_part_moves_with_the_picture():
    """A textured patch moved by (12, 6) pixels at full size (3, 1.5 on the quarter-size copy): its
    mask follows it by the copy's nearest step, and painting it puts 1 inside and 0 far away."""
    full = (320, 240)
    mask = np.zeros((240, 320), bool)
    mask[80:140, 100:160] = True
    grey0 = textured(60, 80)
    part = start_tracking(mask, grey0)
    assert part is not None and part.box == (100, 80, 60, 60)
    grey1 = np.roll(grey0, (2, 3), axis=(0, 1))   # the picture moved by 3 px right and 2 px down
    moved = follow_part(part, grey1, full[0])
    assert moved is not None and moved.box == (112, 88, 60, 60)
    painted = paint([moved], full)
    assert painted[90:146, 114:170].min() == 1.0 and painted[:80].max() == 0.0 and painted[:, :100].max() == 0.0


def test_a_part_that_no_longer_matches_is_lost():
    mask = np.zeros((240, 320), bool)
    mask[80:140, 100:160] = True
    part = start_tracking(mask, textured(60, 80))
    assert follow_part(part, textured(60, 80, seed=1), 320) is None


def test_a_hand_mask_keeps_to_the_fingers():
    """Palm filled, fingers as thin strokes: the gap between two spread fingers is not the hand."""
    points = np.zeros((21, 2), np.float32)
    points[0] = (100, 200)
    for finger, x in zip(range(5), (40, 70, 100, 130, 160)):
        base = 1 + 4 * finger
        for k in range(4):
            points[base + k] = (100 + (x - 100) * (k + 1) / 4 * 1.5, 150 - 25 * k)
    mask = hand_mask(points, (256, 256))
    assert mask[165:175, 97:104].all()                   # inside the palm
    hull = np.zeros((256, 256), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points).astype(np.int32), 1)
    assert mask.sum() < 0.5 * hull.sum()                 # well under the landmarks' convex hull
    assert not mask[80, 115]                             # between the middle and ring finger tips



def test_painting_ramps_only_around_the_parts_as_the_whole_image_would():
    """The parts are 1 and the ramp outside them is the whole image's 5×5 box filter of the pasted masks (an
    independent formula: blur everything), computed only around the parts, also where a part touches the
    frame's edge."""
    full = (320, 240)
    grey = textured(60, 80)
    corner, middle = np.zeros((240, 320), bool), np.zeros((240, 320), bool)
    corner[0:50, 270:320] = True
    middle[100:160, 100:150] = True
    parts = [start_tracking(corner, grey), start_tracking(middle, grey)]
    assert None not in parts
    pasted = (corner | middle).astype(np.float32)
    np.testing.assert_allclose(paint(parts, full), np.maximum(pasted, cv2.blur(pasted, (5, 5))), atol=1e-6)
    assert paint([], full).max() == 0.0 and paint_box([], full) is None
    box, patch = paint_box([parts[1]], full)  # one part: painted in its own box, not over the frame
    assert patch.shape == (68, 58) and np.array_equal(paint([parts[1]], full)[box], patch)


def test_a_thin_part_is_raised_whole_and_nothing_beside_it_reaches_half():
    """A finger's stroke two pixels wide: every pixel of it is 1, and no pixel beside it reaches 0.5, so
    α > 0.5 after raising the matte is the finger itself where the matte was background."""
    full = (320, 240)
    hand = np.zeros((240, 320), bool)
    hand[90:130, 200:240] = True  # the palm
    hand[100:102, 60:200] = True  # a finger
    part = start_tracking(hand, textured(60, 80))
    assert part is not None
    painted = paint([part], full)
    assert painted[hand].min() == 1.0
    beside_finger = painted[95:107, 55:195][~hand[95:107, 55:195]]
    assert beside_finger.max() < 0.5 and painted[102, 100] > 0.0  # a ramp, not a hard step


def record_runs(monkeypatch, hand_from: int | None) -> tuple[dict, list[tuple[str, int]]]:
    """Stand-ins for the landmark models that record which one ran on which frame; they find no face, and a
    hand from frame ``hand_from`` on (never when None). Returns (the frame counter to set, the runs)."""
    runs: list[tuple[str, int]] = []
    frame = {"index": 0}

    class Recording:
        def __init__(self, faces: bool, hands: bool, video: bool, face_erode: float) -> None:
            self.kind = "faces" if faces else "hands"
            self.made_on = threading.current_thread().name

        def __call__(self, rgb: np.ndarray) -> landmarks.Parts:
            runs.append((self.kind, frame["index"]))
            hand = np.zeros(rgb.shape[:2], bool)
            hand[10:60, 20:100] = True
            found = self.kind == "hands" and hand_from is not None and frame["index"] >= hand_from
            return landmarks.Parts([], [hand] if found else [])

        def close(self) -> None:
            pass

    monkeypatch.setattr(landmarks, "PartFinder", Recording)
    return frame, runs


def run_a_second(frame: dict, guard: landmarks.PartGuard) -> None:
    rgb, grey = np.zeros((72, 128, 3), np.uint8), np.zeros((18, 32), np.uint8)
    for i in range(30):  # one second at 30 fps
        frame["index"] = i
        guard(rgb, grey, i / 30, follows=i > 0)


def test_the_hand_model_runs_half_an_interval_after_the_face_model(monkeypatch):
    frame, runs = record_runs(monkeypatch, hand_from=0)
    run_a_second(frame, landmarks.PartGuard(interval_s=0.15))
    faces = [i for kind, i in runs if kind == "faces"]
    hands = [i for kind, i in runs if kind == "hands"]
    # A new stream is searched for both at once; then each runs every 0.15 s (5 frames at 30 fps), the
    # hands half an interval after the faces, never on the same frame.
    assert faces == [0, 5, 10, 15, 20, 25]
    assert hands == [0, 3, 8, 13, 18, 23, 28]


def test_hands_out_of_view_are_searched_for_half_as_often(monkeypatch):
    frame, runs = record_runs(monkeypatch, hand_from=12)
    run_a_second(frame, landmarks.PartGuard(interval_s=0.15, hand_search_s=0.3))
    hands = [i for kind, i in runs if kind == "hands"]
    faces = [i for kind, i in runs if kind == "faces"]
    # Every 0.3 s (two intervals) while no hand is found: the runs after the new stream's search stay half an
    # interval from the face model's (at -0.075 + 0.3 s, frame 7, then frame 16, which finds one); from the
    # run that finds one, every 0.15 s again. The face model, which finds no face either, keeps its interval.
    assert hands == [0, 7, 16, 21, 26]
    assert faces == [0, 5, 10, 15, 20, 25]


class Inline(Executor):
    """Runs what is submitted at once, on the caller's thread: a run that is over before the next frame."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        done: Future = Future()
        done.set_result(fn(*args, **kwargs))
        return done


def painted_frames(frame: dict, guard: landmarks.PartGuard, live: bool) -> list[int]:
    """The frames of one second at 30 fps on which ``guard`` paints something (a textured picture that holds
    still, so a part found is followed)."""
    rgb, grey = np.zeros((72, 128, 3), np.uint8), textured(18, 32)
    painted = []
    for i in range(30):
        frame["index"] = i
        if guard(rgb, grey, i / 30, follows=i > 0, live=live) is not None:
            painted.append(i)
    return painted


def test_a_live_run_is_taken_up_a_frame_later_and_a_file_keeps_every_run_in_place(monkeypatch):
    frame, runs = record_runs(monkeypatch, hand_from=12)
    rendered = painted_frames(frame, landmarks.PartGuard(interval_s=0.15, hand_search_s=0.3), live=False)
    file_runs = list(runs)
    runs.clear()
    live = painted_frames(frame, landmarks.PartGuard(interval_s=0.15, hand_search_s=0.3, runner=Inline()),
                          live=True)
    # The same runs on the same frames (the search that finds the hand at frame 16 counts the next runs from
    # that frame either way), but live the hand found by that search is painted from frame 17 on.
    assert runs == file_runs
    assert rendered == list(range(16, 30)) and live == list(range(17, 30))


@pytest.mark.parametrize("hand_from", [None, 0])
def test_live_runs_go_to_a_thread_of_their_own_whether_or_not_they_find_a_part(monkeypatch, hand_from):
    frame, runs = record_runs(monkeypatch, hand_from=hand_from)
    threads = []
    real = landmarks.PartFinder

    class OnWhichThread(real):
        def __call__(self, rgb):
            threads.append((self.kind, frame["index"], threading.current_thread().name))
            return super().__call__(rgb)

    monkeypatch.setattr(landmarks, "PartFinder", OnWhichThread)
    guard = landmarks.PartGuard(interval_s=0.15, hand_search_s=0.3)
    painted_frames(frame, guard, live=True)
    guard.close()  # waits for a run still on the worker
    first, later = threads[:2], threads[2:]
    assert all(not name.startswith("landmarks") for _, _, name in first)  # a new stream: on the frame itself
    assert later and all(name.startswith("landmarks") for _, _, name in later)


def test_a_live_stream_s_models_are_made_on_the_worker_and_a_file_s_in_place(monkeypatch):
    """The model a live stream runs on the worker (in video mode) is made there too, so its graph's own threads
    start below the frame loop's priority; a file's, and the one that searches a stream's first frame afresh,
    run in place and are made in place."""
    made = set()
    real = landmarks.PartWatch._finder

    def recorded(self, video, low):
        finder = real(self, video, low)
        made.add((finder.kind, video, finder.made_on.startswith("landmarks")))
        return finder

    frame, _ = record_runs(monkeypatch, hand_from=None)
    monkeypatch.setattr(landmarks.PartWatch, "_finder", recorded)
    for live in (False, True):
        made.clear()
        guard = landmarks.PartGuard(interval_s=0.15, hand_search_s=0.3)
        painted_frames(frame, guard, live=live)
        guard.close()
        assert made == {(kind, video, live and video) for kind in ("faces", "hands") for video in (False, True)}
