"""Helpers shared by the GUI tests (the fixtures are in conftest.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests import conftest


def wait_applied(qtbot, window, what: str, timeout: int = 15000):
    """Wait for the controller to report that a change of ``what`` took effect."""
    return qtbot.waitSignal(window.controller.applied, timeout=timeout, check_params_cb=lambda w: w == what)


def wait_failed(qtbot, window, what: str, timeout: int = 15000):
    return qtbot.waitSignal(window.controller.failed, timeout=timeout, check_params_cb=lambda w, _: w == what)


def write_image(path: Path, size=(160, 90)) -> Path:
    """A small colour-gradient picture (a stand-in for a user's background file)."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)
    image = np.stack([np.tile(x[::-1], (h, 1)), np.full((h, w), 120, np.uint8), np.tile(x, (h, 1))], axis=2)
    return conftest.write_image(path, image)
