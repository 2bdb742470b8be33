"""Blending methods; importing this package registers them."""
from models.blending import defringe, learned, linear  # noqa: F401
from models.blending.base import Blend

__all__ = ["Blend"]
