"""The sample every transform step receives and returns, and the composition of steps.

A step moves the image and everything drawn on it together: the target's keypoints, the other people's
keypoints and the box. Steps draw their randomness from the generator they are given, so a sample is
reproducible from (seed, epoch, index) whatever worker produces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass
class Sample:
    """One person in one image, on its way from the file to the network.

    image: uint8[H, W, 3] BGR, the whole image until :class:`~train.transforms.geometry.AffineCrop`,
        the crop after it; keypoints: float32[K, 3] (x, y, v) of the target, v in {0, 1, 2};
    others: float32[P, K, 3] the other people of the image (same frame as ``image``);
    box: float32[4] x1 y1 x2 y2 of the target; center: float32[2]; scale: float32[2] w, h in pixels
    of the region that becomes the crop; rotation in degrees; matrix: float32[2, 3] image -> crop,
    set by the crop; log: what the occlusion steps did (for inspection and tests).
    """

    image: np.ndarray
    keypoints: np.ndarray
    others: np.ndarray
    box: np.ndarray
    center: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.ones(2, np.float32))
    rotation: float = 0.0
    flipped: bool = False
    matrix: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    log: list[Any] = field(default_factory=list)

    @property
    def num_joints(self) -> int:
        return self.keypoints.shape[0]

    def box_size(self) -> tuple[float, float]:
        """(w, h) of the target's box in the current frame."""
        return float(self.box[2] - self.box[0]), float(self.box[3] - self.box[1])


class Step(Protocol):
    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample: ...


class Compose:
    """Run steps in order; each may change the sample in place and returns it."""

    def __init__(self, steps: Sequence[Step]):
        self.steps = list(steps)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for step in self.steps:
            sample = step(sample, rng)
        return sample

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(type(s).__name__ for s in self.steps) + ")"
