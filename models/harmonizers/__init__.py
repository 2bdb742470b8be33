"""Harmonizers; importing this package registers them."""
from models.harmonizers import filter_harmonizer, identity  # noqa: F401
from models.harmonizers.base import Harmonizer, StreamState

__all__ = ["Harmonizer", "StreamState"]
