"""Harmonicam: real-time background replacement with colour harmonization."""
__version__ = "0.1.0"
