"""The default blend: one that wins on held-out real footage and keeps real time on the device, else linear."""
from __future__ import annotations

import pytest

from app import assemble
from app.assemble import AUTO, StageChoice, blend_name, default_blend, make_blend
from app.errors import UsageError
from models import registry

ALL = ["linear", "defringe", "learned"]


def test_no_blend_wins_on_real_footage_today_so_auto_is_linear_blending_everywhere(monkeypatch):
    assert StageChoice().blend == AUTO
    monkeypatch.setattr(registry, "usable", lambda kind: ALL)
    assert default_blend("cpu") == "linear" and default_blend("cuda") == "linear"


@pytest.mark.parametrize("learned, usable, cuda", [
    ((19.0, 27.5), ALL, "learned"),                   # 1.65 dB better in the band, no worse over the frame
    ((19.0, 27.4), ALL, "linear"),                    # better in the band, worse over the whole frame
    ((18.5, 28.0), ALL, "linear"),                    # better, but by less than the margin
    ((19.0, 27.5), ["linear", "defringe"], "linear"),  # the winner has no weights here
])
def test_auto_takes_a_real_footage_winner_only_where_it_keeps_real_time(monkeypatch, learned, usable, cuda):
    monkeypatch.setattr(assemble, "REAL_FOOTAGE_PSNR", {"linear": (17.35, 27.47), "defringe": (17.0, 27.3),
                                                        "learned": learned})
    monkeypatch.setattr(registry, "usable", lambda kind: usable)
    assert default_blend("cuda") == cuda
    assert default_blend("cpu") == "linear"  # the learned network is too slow for camera rate on a CPU


def test_the_best_of_several_winners_is_taken(monkeypatch):
    monkeypatch.setattr(assemble, "REAL_FOOTAGE_PSNR", {"linear": (17.0, 27.0), "defringe": (18.6, 27.0),
                                                        "learned": (19.5, 27.2)})
    monkeypatch.setattr(registry, "usable", lambda kind: ALL)
    assert default_blend("cuda") == "learned" and default_blend("cpu") == "defringe"


def test_an_explicit_choice_is_kept_and_auto_builds_the_default():
    assert blend_name(StageChoice(blend="defringe", device="cuda")) == "defringe"
    blend = make_blend(StageChoice(device="cpu"))
    assert type(blend).__name__ == "LinearBlend"
    blend.close()
    with pytest.raises(UsageError, match="unknown blend 'nope'"):
        make_blend(StageChoice(blend="nope"))
