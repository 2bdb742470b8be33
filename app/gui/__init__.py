"""The PyQt6 desktop window."""
