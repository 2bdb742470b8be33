"""``python -m app.gui [--screenshot PATH]``: the same as ``harmonicam gui``."""
import sys

from app.cli import main

raise SystemExit(main(["gui", *sys.argv[1:]]))
