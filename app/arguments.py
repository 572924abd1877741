"""Argument types shared by the command lines (``occlupose``, ``occlupose-gui``): a bad value is one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``, where given)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if high is None and v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        if high is not None and not low <= v <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {v}")
        return v

    return parse



def imgsz_arg(text: str) -> int | str:
    """An argparse type for ``--imgsz``: ``auto`` or a whole number from 32 to 4096."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number, got {text!r}") from None
    if not 32 <= v <= 4096:
        raise argparse.ArgumentTypeError(f"must be auto or between 32 and 4096, got {v}")
    return v
