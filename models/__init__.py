"""Harmonicam's models: matting, blending and harmonization, behind one registry."""
