"""The ``none`` harmonizer: the composite unchanged."""
from __future__ import annotations

from models.harmonizers.base import Harmonizer
from models.registry import register


@register("harmonizer", "none", "no harmonization (the plain composite)")
class NoHarmonizer(Harmonizer):
    """Returns the composite as it is."""

    def harmonize(self, composite, background, frame, state):
        return composite.image
