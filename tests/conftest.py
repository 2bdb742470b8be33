"""Shared fixtures: real photos of people, an isolated cache/config, offscreen Qt."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

# Qt aborts the process without a display; tests always render offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def isolated_app_dirs(tmp_path_factory):
    """Never touch the real home: cache (sample clip), config and logs live in a temp folder."""
    base = tmp_path_factory.mktemp("appdirs")
    saved = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")}
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")
    os.environ["XDG_STATE_HOME"] = str(base / "state")  # the log file
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, NASA (public domain), 512×512 RGB, from scikit-image."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """Grace Hopper, U.S. Navy portrait (public domain), 512×600 RGB, from matplotlib."""
    from app.imaging import read_rgb
    from app.sources.sample import portrait_path

    return read_rgb(portrait_path())


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    from app.sources.sample import sample_clip_path

    return sample_clip_path()


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0, opencv_mjpeg: bool = False) -> Path:
    """Write RGB frames to an MJPG .avi (lossy but fast and always available).

    ``opencv_mjpeg``: OpenCV's own MJPEG writer, which keeps odd sizes (FFmpeg's rounds them down).
    """
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    if opencv_mjpeg:
        writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, fourcc, fps, (w, h))
    else:
        writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def numbered_frames(n: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their index (10, 20, 30, …)."""
    w, h = size
    return [np.full((h, w, 3), 10 * (i + 1), np.uint8) for i in range(n)]


def write_image(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def photo_folder(root: Path, rgb: np.ndarray, split: str, count: int) -> Path:
    """``count`` 96×96 crops of ``rgb`` (a photo of at least 512²) in ``root``, named so that the training
    data's split puts them in ``split``: a tiny data set for the trainers."""
    from models.training.data import split_of

    root.mkdir(parents=True, exist_ok=True)
    names = (f"photo{i}" for i in range(10_000) if split_of(f"photo{i}") == split)
    for k, name in zip(range(count), names):
        write_image(root / f"{name}.png", cv2.resize(rgb[k * 40:k * 40 + 300, k * 30:k * 30 + 300], (96, 96)))
    return root


@pytest.fixture
def vcam_backends(monkeypatch):
    """Only "harmonicam-test" (in memory) and "harmonicam-nodriver" are registered, for this test."""
    import pyvirtualcam
    import pyvirtualcam.camera

    from tests.vcam_backends import MemoryCamera, MissingDriver

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    pyvirtualcam.register_backend("harmonicam-test", MemoryCamera)
    pyvirtualcam.register_backend("harmonicam-nodriver", MissingDriver)
    MemoryCamera.instances.clear()
    return MemoryCamera


@pytest.fixture
def isolated_logging(tmp_path_factory, monkeypatch):
    """The log file goes to a folder of its own (not the test's ``tmp_path``, which tests check for
    leftovers); the root logger is as it was afterwards."""
    import logging

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
