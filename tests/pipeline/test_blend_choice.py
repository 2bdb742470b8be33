"""The default blend: the learned one where it keeps real time, ``defringe`` elsewhere."""
from __future__ import annotations

import pytest

from app.assemble import AUTO, StageChoice, blend_name, default_blend, make_blend
from app.errors import UsageError
from models import registry


def test_a_cpu_gets_defringe_and_cuda_the_learned_blend_when_it_is_installed(monkeypatch):
    assert StageChoice().blend == AUTO
    assert default_blend("cpu") == "defringe"
    monkeypatch.setattr(registry, "usable", lambda kind: ["linear", "defringe", "learned"])
    assert default_blend("cuda") == "learned"
    monkeypatch.setattr(registry, "usable", lambda kind: ["linear", "defringe"])
    assert default_blend("cuda") == "defringe"  # no weights: the learned blend cannot run


def test_an_explicit_choice_is_kept_and_auto_builds_the_default():
    assert blend_name(StageChoice(blend="linear", device="cuda")) == "linear"
    blend = make_blend(StageChoice(device="cpu"))
    assert type(blend).__name__ == "DefringeBlend"
    blend.close()
    with pytest.raises(UsageError, match="unknown blend 'nope'"):
        make_blend(StageChoice(blend="nope"))
