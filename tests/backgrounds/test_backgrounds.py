"""Complete backgrounds: cover-fit images, frame-locked videos, halo-free blur, colours."""
from __future__ import annotations

import numpy as np
import pytest

from app.backgrounds import BlurBackground, ColourBackground, ImageBackground, VideoBackground, parse_background
from app.errors import RuntimeFailure, UsageError
from app.imaging import cover_fit
from models.frame import Frame
from tests.conftest import numbered_frames, write_image, write_video


def frame(size=(64, 48), index=0, value=0) -> Frame:
    w, h = size
    return Frame(np.full((h, w, 3), value, np.uint8), index, index / 30)


def test_cover_fit_crops_instead_of_stretching():
    img = np.zeros((100, 400, 3), np.uint8)
    img[:, 150:250] = 255  # a centred white band, 1/4 of the width
    out = cover_fit(img, (200, 200))
    assert out.shape == (200, 200, 3)
    white = (out[100, :, 0] > 128).mean()
    assert white == pytest.approx(1.0, abs=0.01)  # the band fills the centre crop, not squashed to 1/4


def test_image_background_is_cached_per_size(tmp_path, astronaut):
    bg = ImageBackground(write_image(tmp_path / "a.png", astronaut))
    a, b = bg.at(frame((160, 90)), None), bg.at(frame((160, 90)), None)
    assert a is b and a.shape == (90, 160, 3)
    assert bg.at(frame((90, 160)), None).shape == (160, 90, 3)


def test_each_background_choice_has_a_new_version():
    assert ColourBackground((1, 2, 3)).version != ColourBackground((1, 2, 3)).version


def test_video_background_is_frame_locked_and_loops(tmp_path):
    bg = VideoBackground(write_video(tmp_path / "bg.avi", numbered_frames(4)), frame_locked=True)
    seen = [round(bg.at(frame(index=i), None).mean() / 10) - 1 for i in [0, 1, 2, 3, 4, 5, 9, 2]]
    assert seen == [0, 1, 2, 3, 0, 1, 1, 2]
    bg.close()


def test_video_background_paced_by_time_for_live_sources(tmp_path):
    bg = VideoBackground(write_video(tmp_path / "bg.avi", numbered_frames(4)), frame_locked=False)
    first = bg.at(frame(index=500), None)  # the source's index does not matter
    assert round(first.mean() / 10) - 1 == 0


def test_blur_does_not_bleed_the_person_into_the_background():
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[:, :] = (0, 0, 255)          # blue room
    rgb[30:90, 60:100] = (255, 0, 0)  # red person
    alpha = np.zeros((120, 160), np.float32)
    alpha[30:90, 60:100] = 1.0
    out = BlurBackground(2.0).at(Frame(rgb, 0, 0.0), alpha)
    ring = out[20:100, 50:110].reshape(-1, 3)  # just around the person
    assert ring[:, 0].max() < 40, "red from the person leaked into the blurred background"
    plain = BlurBackground(2.0).at(Frame(rgb, 0, 0.0), np.zeros_like(alpha))
    assert plain[60, 55, 0] > 40  # without the weights the leak is there: the test can fail


@pytest.mark.parametrize("spec, kind", [("blur", BlurBackground), ("blur:2.5", BlurBackground),
                                        ("#336699", ColourBackground), ("336699", ColourBackground)])
def test_parse_background(spec, kind):
    assert isinstance(parse_background(spec), kind)


def test_colour_background_values():
    out = parse_background("#336699").at(frame(), None)
    assert tuple(out[0, 0]) == (0x33, 0x66, 0x99)


@pytest.mark.parametrize("spec, error, text", [
    ("blur:x", UsageError, "must be a number"), ("blur:0", UsageError, "out of range"),
    ("nothing.txt", UsageError, "not an image or video"), ("missing.jpg", RuntimeFailure, "does not exist"),
])
def test_bad_backgrounds(spec, error, text):
    with pytest.raises(error, match=text):
        parse_background(spec)
