"""Per-frame cost of tracking and fixed-lag smoothing, as the pipeline runs them, printed (timings depend on
the machine, so they are not asserted); what is asserted is that the measured work is the whole work.

Run ``python -m tests.trackers.test_tracker_speed`` from the repository root for a longer measurement,
or ``pytest tests/trackers/test_tracker_speed.py -s`` to see the short one.
"""

from __future__ import annotations

import time

import numpy as np

from posecore.types import Poses
from trackers import Tracker
from trackers.smoother import FixedLagSmoother


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


def track_and_smooth(data: list[Poses], lag: int) -> list[tuple[int, list]]:
    """(frame index, final tracks) of every frame, tracked and smoothed with ``lag`` frames of look-ahead
    exactly as ``Pipeline.replay`` and ``Pipeline.flush`` do it."""
    tracker, smoother = Tracker(), FixedLagSmoother(lag)
    out = []
    for i, poses in enumerate(data):
        tracks = tracker.update(poses, i, keep_step=lag > 0)
        out += smoother.push(i, tracks, tracker.last_step if lag > 0 else None)
    return out + smoother.flush()


def per_frame_ms(num_people: int, frames: int = 200, repeats: int = 3, lag: int | None = None) -> tuple[float, float]:
    """Best-of-``repeats`` mean milliseconds per frame of tracking and smoothing: (wall clock, CPU time).
    ``lag``: the smoother's look-ahead (default: the tracker's ``smoothing_lag``).

    CPU time is the steadier figure on a busy machine; wall clock includes waiting for a core.
    """
    data = crowd(num_people, frames)
    lag = Tracker().config.smoothing_lag if lag is None else lag
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        track_and_smooth(data, lag)
        wall = min(wall, (time.perf_counter() - t0) / frames * 1e3)
        cpu = min(cpu, (time.process_time() - c0) / frames * 1e3)
    return wall, cpu


def test_the_timed_work_tracks_and_smooths_every_frame():
    """What the timing runs: every frame comes out, in order, with the tracker's identities, and the
    smoother moved the joints (so smoothing was really done, not skipped)."""
    data = crowd(20, 40)
    lag = Tracker().config.smoothing_lag
    assert lag > 0
    smoothed, causal = track_and_smooth(data, lag), track_and_smooth(data, 0)
    assert [i for i, _ in smoothed] == list(range(40)) == [i for i, _ in causal]
    assert [[t.track_id for t in ts] for _, ts in smoothed] == [[t.track_id for t in ts] for _, ts in causal]
    moved = max(np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max()
                for (_, sa), (_, sb) in zip(smoothed, causal) for a, b in zip(sa, sb))
    assert moved > 0.1
    for n in (10, 50):  # the cost of that very work, printed with -s
        wall, cpu = per_frame_ms(n, frames=60, repeats=1)
        print(f"\ntracking + smoothing, {n} people x 17 joints: {wall:.3f} ms/frame wall, {cpu:.3f} ms CPU")


if __name__ == "__main__":
    for n in (1, 10, 50, 100):
        wall, cpu = per_frame_ms(n)
        print(f"{n:4d} people: {wall:.3f} ms/frame wall clock, {cpu:.3f} ms/frame CPU")
