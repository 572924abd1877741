"""Calibration inputs for int8 quantization: real frames, letterboxed exactly as the detector feeds them.

Sources are videos (frames spread evenly over each), image folders and images. Use training data only,
never the images the int8 model is evaluated on (``occlupose export`` takes them from the user).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import SourceError
from ..io.sources import IMAGE_EXTENSIONS, open_source


def _images_in(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [path]


def calibration_frames(sources: Sequence[str | Path], count: int) -> list[np.ndarray]:
    """Up to ``count`` BGR frames spread over ``sources``: each source gets an equal share, taken evenly
    over its frames (a folder may hold videos, images, or sub-folders of images)."""
    items: list[Path] = []
    for s in sources:
        p = Path(s)
        if not p.exists():
            raise SourceError(f"calibration source not found: {p}")
        if p.is_dir():
            videos = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in {".mp4", ".avi", ".mov",
                                                                                         ".mkv", ".webm"})
            images = _images_in(p)
            items += videos
            if images:
                items.append(p)  # one image folder counts as one source
        else:
            items.append(p)
    if not items:
        raise SourceError("no calibration frames: give videos, images or folders of them")
    share = max(1, count // len(items))
    frames: list[np.ndarray] = []
    for item in items:
        if item.is_dir():
            paths = _images_in(item)
            picked = [paths[i] for i in np.linspace(0, len(paths) - 1, min(share, len(paths))).astype(int)]
            for path in picked:
                frames += [f.image for f in open_source(str(path))]
        else:
            src = open_source(str(item))
            total = src.frame_count or share
            wanted = set(np.linspace(0, max(0, total - 1), min(share, total)).astype(int).tolist())
            for f in src:
                if f.index in wanted:
                    frames.append(f.image)
                if f.index >= max(wanted):
                    break
            src.close()
    return frames[:count]


def calibration_inputs(frames: Sequence[np.ndarray], preprocess: Callable[[np.ndarray], "object"]) -> list[np.ndarray]:
    """The network inputs float32[1, 3, H, W] of ``frames`` through ``preprocess`` (the detector's letterbox)."""
    return [np.ascontiguousarray(preprocess(f).float().numpy()) for f in frames]
