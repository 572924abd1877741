"""The one progress bar of the command line (tqdm on stderr), for the batch command and the benchmark."""

from __future__ import annotations

import sys


def progress_bar(total: int | None, desc: str, enabled: bool = True, mininterval: float = 0.5, leave: bool = True):
    """A tqdm bar counting frames, or None when ``enabled`` is false (callers test for None)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True,
                mininterval=mininterval, leave=leave)
