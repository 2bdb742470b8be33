"""The part of ``cv2.VideoCapture`` a :class:`~app.sources.camera.CameraSource` uses, for scripted devices."""
from __future__ import annotations


class FakeCapture:
    """An always-open device that accepts every setting; subclasses say what ``read`` returns."""

    released = False

    def isOpened(self):
        return True

    def set(self, *args):
        return True

    def get(self, prop):
        return 0

    def release(self):
        self.released = True
