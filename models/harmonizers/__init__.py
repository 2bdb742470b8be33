"""Harmonizers; importing this package registers them.

Each method is a peer: the Harmonizer sub-package, the baselines, and (later)
AdaIN, PHNet and HPBNet beside them.
"""
from models.harmonizers import identity, reinhard  # noqa: F401
from models.harmonizers.adain import stage as adain_stage  # noqa: F401
from models.harmonizers.base import Harmonizer
from models.harmonizers.harmonizer import stage  # noqa: F401
from models.harmonizers.hpbnet import stage as hpbnet_stage  # noqa: F401
from models.harmonizers.phnet import stage as phnet_stage  # noqa: F401
from models.stream import StreamState

__all__ = ["Harmonizer", "StreamState"]
