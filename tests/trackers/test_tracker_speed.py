"""Per-frame cost of tracking and smoothing, printed (not asserted: timings depend on the machine).

Run ``python -m tests.trackers.test_tracker_speed`` from the repository root for a longer measurement,
or ``pytest tests/trackers/test_tracker_speed.py -s`` to see the short one.
"""

from __future__ import annotations

import time

import numpy as np

from posecore.types import Poses
from trackers import Tracker


def crowd(num_people: int, frames: int, seed: int = 0) -> list[Poses]:
    """People walking on a grid with noisy joints; every frame a few drop out or score low."""
    rng = np.random.default_rng(seed)
    start = np.stack([np.arange(num_people) % 10 * 180.0, np.arange(num_people) // 10 * 300.0], 1)
    vel = rng.normal(0, 2, (num_people, 2))
    shape = rng.uniform(0, 1, (num_people, 17, 2)) * [80.0, 200.0]
    out = []
    for f in range(frames):
        xy = start + vel * f
        boxes = np.concatenate([xy, xy + [80.0, 200.0]], 1)
        xy_k = xy[:, None] + shape + rng.normal(0, 3, shape.shape)
        kpts = np.concatenate([xy_k, rng.uniform(0, 1, (num_people, 17, 1))], -1)
        scores = np.where(rng.random(num_people) < 0.1, 0.3, 0.9)
        keep = rng.random(num_people) > 0.05
        out.append(Poses(boxes[keep], scores[keep], kpts[keep]))
    return out


def per_frame_ms(num_people: int, frames: int = 200, repeats: int = 3) -> tuple[float, float]:
    """Best-of-``repeats`` mean milliseconds of ``Tracker.update`` per frame: (wall clock, CPU time).

    CPU time is the steadier figure on a busy machine; wall clock includes waiting for a core.
    """
    data = crowd(num_people, frames)
    wall = cpu = float("inf")
    for _ in range(repeats):
        tracker = Tracker()
        t0, c0 = time.perf_counter(), time.process_time()
        for i, poses in enumerate(data):
            tracker.update(poses, i)
        wall = min(wall, (time.perf_counter() - t0) / frames * 1e3)
        cpu = min(cpu, (time.process_time() - c0) / frames * 1e3)
    return wall, cpu


def test_report_tracking_cost():
    for n in (10, 50):
        wall, cpu = per_frame_ms(n, frames=60, repeats=1)
        print(f"\ntracking + smoothing, {n} people x 17 joints: {wall:.3f} ms/frame wall, {cpu:.3f} ms CPU")
        assert np.isfinite(wall) and np.isfinite(cpu)


if __name__ == "__main__":
    for n in (1, 10, 50, 100):
        wall, cpu = per_frame_ms(n)
        print(f"{n:4d} people: {wall:.3f} ms/frame wall clock, {cpu:.3f} ms/frame CPU")
