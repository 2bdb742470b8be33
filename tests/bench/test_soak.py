"""A long run with switches: flat memory, no leaked threads, no growing frame time."""
from __future__ import annotations

import threading

import pytest

from app.assemble import StageChoice
from app.backgrounds import SHIPPED_DIR
from app.commands.soak import soak

pytestmark = pytest.mark.slow


def test_thousands_of_frames_with_switches_keep_memory_and_threads_flat():
    backgrounds = [str(SHIPPED_DIR / "sunset-warm.jpg"), "blur:1", "#336699"]
    report = soak(StageChoice(harmonizer="harmonizer"), backgrounds, ["harmonizer", "reinhard", "none"],
                  size=(96, 54), frames=1200, switch_every=10)
    assert report.frames == 1200 and report.switches == 120
    assert report.rss_mb_end - report.rss_mb_start < 40  # measured here: about +12 MiB, flat after warm-up
    assert report.threads_end == report.threads_start
    assert not [t for t in threading.enumerate() if t.name.startswith(("harmonizer-args", "stage-closer"))]
