"""Sinks: virtual camera, video files, PNG sequences, mattes, memory; ``make_sink`` parses ``--output``,
``make_matte_sink`` ``--output-matte``."""
from __future__ import annotations

from app.sinks.base import NullSink, Sink
from app.sinks.image_sequence import ImageSequenceSink
from app.sinks.matte import MatteSink, make_matte_sink
from app.sinks.threaded import InThread
from app.sinks.video_file import VideoFileSink
from app.sinks.virtual_camera import RECONNECT_S, VirtualCameraSink


def make_sink(spec: str, vcam_backend: str | None = None, vcam_device: str | None = None) -> Sink:
    """``vcam`` → the virtual camera (re-opened when its device goes away); anything else is an output file,
    encoded on a thread of its own."""
    if spec == "vcam":
        return VirtualCameraSink(vcam_backend, vcam_device, reconnect_s=RECONNECT_S)
    return InThread(VideoFileSink(spec))


__all__ = ["Sink", "NullSink", "ImageSequenceSink", "InThread", "MatteSink", "VideoFileSink", "VirtualCameraSink",
           "make_sink", "make_matte_sink"]
