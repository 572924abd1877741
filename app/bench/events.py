"""Occlusion stress events: which tracked person to cover, in which frames, and by what.

On the clean run's detections, a tracked person is followed as a chain of confident detections linked
by box IoU from frame to frame. An event covers that person for ``k`` frames, in a copy of the clip:
``block`` paints a grey block over the person's box (10 % margin); ``person`` pastes the crop of another
confident person, taken from a distant frame, scaled a little taller than the target, which walks in
from one side, stands in front of the target for ``k`` frames and walks out the other side (drawn by
``occluders``). Events do not overlap and each has quiet frames before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.boxes import box_iou
from posecore.types import Poses

CHAIN_IOU = 0.3  # linking one person's detections across frames
TARGET_SCORE = 0.5  # an occlusion target is detected at least this confidently


@dataclass
class OcclusionEvent:
    """One person covered in a copy of the clip.

    kind: ``block`` or ``person``; covered: first frame fully covered; frames: how many frames it is
    covered (k); boxes: the target's box float32[4] for every frame the occluder is drawn in (a
    ``person`` occluder also walks in and out); donor: (frame, box) of the pasted person for ``person``.
    """

    kind: str
    covered: int
    frames: int
    boxes: dict[int, np.ndarray]
    donor: tuple[int, np.ndarray] | None = None
    direction: int = 1  # +1: the passer-by walks left to right

    @property
    def window(self) -> range:
        """Frames that differ from the clean clip."""
        return range(min(self.boxes), max(self.boxes) + 1)


@dataclass
class StressPlan:
    """Occlusion events of one kind and length, with the frames they change."""

    kind: str
    frames: int
    events: list[OcclusionEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.kind}-k{self.frames}"

    def changed(self, num_frames: int) -> np.ndarray:
        """bool[F]: frames that differ from the clean clip."""
        out = np.zeros(num_frames, bool)
        for e in self.events:
            out[e.window.start:min(e.window.stop, num_frames)] = True
        return out


def walk_in_frames(k: int) -> int:
    """Frames a pasted passer-by takes to walk in front of the target (and as many to walk out)."""
    return max(2, k // 2)


def person_chains(poses: list[Poses], min_score: float = TARGET_SCORE, link_iou: float = CHAIN_IOU) -> list[dict[int, np.ndarray]]:
    """Each person followed through the clean detections: dicts frame -> box float32[4].

    A chain starts at a detection scoring ``min_score`` and continues to the best-overlapping
    detection of the next frame (IoU >= ``link_iou``, same score floor, each used once).
    """
    chains: list[dict[int, np.ndarray]] = []
    open_: list[tuple[dict[int, np.ndarray], np.ndarray]] = []  # (chain, last box)
    for f, p in enumerate(poses):
        keep = np.flatnonzero(p.scores >= min_score)
        boxes = p.boxes[keep]
        used = np.zeros(len(boxes), bool)
        still: list[tuple[dict[int, np.ndarray], np.ndarray]] = []
        if open_ and len(boxes):
            iou = box_iou(np.stack([b for _, b in open_]), boxes)
            r, c = linear_sum_assignment(-iou)
            linked = {int(i): int(j) for i, j in zip(r, c) if iou[i, j] >= link_iou}
        else:
            linked = {}
        for i, (chain, _) in enumerate(open_):
            j = linked.get(i)
            if j is None:
                chains.append(chain)
                continue
            chain[f] = boxes[j].copy()
            used[j] = True
            still.append((chain, boxes[j]))
        for j in np.flatnonzero(~used):
            still.append(({f: boxes[j].copy()}, boxes[j]))
        open_ = still
    chains.extend(c for c, _ in open_)
    return chains


def plan_events(poses: list[Poses], kind: str, k: int, max_events: int, before: int = 5, after: int = 10,
                seed: int = 0) -> StressPlan:
    """Non-overlapping occlusion events of ``kind`` covering a person for ``k`` frames.

    Each target is tracked (as a chain of confident detections) for ``before`` frames before the
    occluder appears and ``after`` frames after it leaves, so a tracker has a track to keep and a
    person to find again. Events are spread over the clip, earliest first.
    """
    plan = StressPlan(kind, k)
    walk = walk_in_frames(k) if kind == "person" else 0
    span = before + walk + k + walk + after
    chains = [c for c in person_chains(poses) if len(c) >= span]
    # Candidate starts: the first frame the occluder is drawn, where the chain covers the whole span.
    candidates = []
    for ci, chain in enumerate(chains):
        frames = sorted(chain)
        present = set(frames)
        for s in frames:
            first = s + before
            if all(f in present for f in range(s, s + span)):
                candidates.append((first, ci))
    candidates.sort()
    busy_until = -1
    donors = _donor_pool(poses)
    for first, ci in candidates:
        if len(plan.events) >= max_events:
            break
        if first - before <= busy_until:
            continue
        chain = chains[ci]
        boxes = {f: chain[f] for f in range(first, first + walk + k + walk)}
        event = OcclusionEvent(kind, first + walk, k, boxes, direction=1 if len(plan.events) % 2 == 0 else -1)
        if kind == "person":
            event.donor = _pick_donor(donors, event, chain)
            if event.donor is None:
                continue
        plan.events.append(event)
        busy_until = first + walk + k + walk + after
    return plan


def _donor_pool(poses: list[Poses]) -> list[tuple[float, int, np.ndarray]]:
    out = []
    for f, p in enumerate(poses):
        for b, s in zip(p.boxes, p.scores):
            if s >= 0.7:
                out.append((float(s), f, b.copy()))
    out.sort(key=lambda x: (-x[0], x[1]))
    return out


def _pick_donor(pool, event: OcclusionEvent, chain: dict[int, np.ndarray]) -> tuple[int, np.ndarray] | None:
    """The most confident person from a frame well away from the event (not the target itself)."""
    far = 2 * len(event.boxes) + 10
    lo, hi = event.window.start - far, event.window.stop + far
    for _, f, box in pool:
        if lo <= f < hi:
            continue
        if f in chain and box_iou(chain[f], box)[0, 0] > 0.5:
            continue
        return f, box
    return None
