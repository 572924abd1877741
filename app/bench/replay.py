"""The replay pass of the quality benchmark: every tracker over the clean detections and over each
stressed copy of the clip, in one decoding pass. Only the frames that differ from the clean clip are
detected again; every tracker gets the same detections."""

from __future__ import annotations

from dataclasses import dataclass

from posecore.types import Poses

from .events import StressPlan
from .metrics import FrameTracks
from .occluders import donor_crops, render
from .tracker_adapters import TRACKERS



@dataclass
class QualityRun:
    """Every tracker's output on the clean clip and on each stressed copy (FrameTracks per frame)."""

    clean: dict[str, list[FrameTracks]]
    stressed: dict[str, dict[str, list[FrameTracks]]]  # plan name -> tracker -> frames
    plans: list[StressPlan]
    detected_again: int  # stressed frames that went through the detector


def replay(open_frames, clean_poses: list[Poses], plans: list[StressPlan], detect, tracker_factory,
           progress=None) -> QualityRun:
    """Run every tracker over the clean detections and over each stressed copy, in one decoding pass.

    open_frames() -> the decoded frames again, from the first (same order as ``clean_poses``);
    detect(image) -> Poses of a stressed image; tracker_factory(name) -> an object with
    ``update(poses, image, frame_index) -> list[FrameTracks]`` (the frames it makes final, in order) and
    ``flush() -> list[FrameTracks]`` (the rest, at the end).
    """
    n = len(clean_poses)
    changed = {p.name: p.changed(n) for p in plans}
    crops = donor_crops(open_frames, plans)
    clean_trackers = {name: tracker_factory(name) for name in TRACKERS}
    stressed_trackers = {p.name: {name: tracker_factory(name) for name in TRACKERS} for p in plans}
    clean: dict[str, list[FrameTracks]] = {name: [] for name in TRACKERS}
    stressed: dict[str, dict[str, list[FrameTracks]]] = {p.name: {name: [] for name in TRACKERS} for p in plans}
    again = 0
    for frame in open_frames():
        f = frame.index
        if f >= n:
            break
        for name, tr in clean_trackers.items():
            clean[name] += tr.update(clean_poses[f], frame.image, f)
        for plan in plans:
            image, poses = frame.image, clean_poses[f]
            if changed[plan.name][f]:
                image = frame.image.copy()
                for i, e in enumerate(plan.events):
                    render(image, e, f, crops.get((plan.name, i)))
                poses = detect(image)
                again += 1
            for name, tr in stressed_trackers[plan.name].items():
                stressed[plan.name][name] += tr.update(poses, image, f)
        if progress is not None:
            progress(1)
    for name, tr in clean_trackers.items():
        clean[name] += tr.flush()
    for plan in plans:
        for name, tr in stressed_trackers[plan.name].items():
            stressed[plan.name][name] += tr.flush()
    return QualityRun(clean, stressed, plans, again)
