"""Command-line argument types shared by the app and the training and evaluation commands: a value out of
range is refused by argparse with one sentence that gives the range."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def number_text(value: float) -> str:
    """``value`` as a user reads it: 30, not 30.0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def ranged(lo: float, hi: float, whole: bool = False) -> Callable[[str], int | float]:
    """An argparse ``type`` for a number from ``lo`` to ``hi`` (inclusive); ``whole`` for integers."""
    kind = "a whole number" if whole else "a number"
    hint = f"use {kind} from {number_text(lo)} to {number_text(hi)}"

    def parse(text: str) -> int | float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}; {hint}") from None
        if not lo <= value <= hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is out of range; {hint}")
        return value

    parse.__name__ = "whole number" if whole else "number"
    return parse


def output_file(example: str, suffixes: tuple[str, ...] = ()) -> Callable[[str], str]:
    """A file to write: its folder must exist, it must not be a folder, and it ends in one of ``suffixes``."""
    def parse(text: str) -> str:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name such as {example}")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist; create it first")
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} must end in {' or '.join(suffixes)}, e.g. {example}")
        return text

    return parse
