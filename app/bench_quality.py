"""Tracking quality without ground truth: occlusion stress (ID switches against the clean run) and
keypoint jitter, measured the same way for every tracker.

Definitions (also printed with the results):

* **Occlusion stress.** On the clean run's detections, a tracked person is followed as a chain of
  confident detections linked by box IoU from frame to frame. An event covers that person for ``k``
  frames, in a copy of the clip: ``block`` paints a grey block over the person's box (10 % margin);
  ``person`` pastes the crop of another confident person, taken from a distant frame, scaled a little
  taller than the target, which walks in from one side, stands in front of the target for ``k`` frames
  and walks out the other side. Events do not overlap and each has quiet frames before and after.
  Only the frames that differ from the clean clip are detected again; every tracker gets the same
  detections.
* **ID switches relative to the clean run.** In every frame that is identical in both clips, the
  tracks each tracker reports as measured in that frame are matched between its clean and its
  stressed run (Hungarian on box IoU, at least 0.5). For each clean track, the sequence of stressed
  IDs it is matched to is read in frame order; every change of that ID is one switch. Switches the
  tracker also makes on the clean clip do not count, and neither do frames inside an occlusion (where
  the occluder itself may be matched).
* **Jitter.** For each track, in every three consecutive frames in which it is measured, the second
  difference ``p(t+1) - 2 p(t) + p(t-1)`` of each joint whose confidence is at least 0.5 in all three,
  divided by the person's size ``sqrt(w * h)`` of the box at ``t``; the mean of its length. Ultralytics'
  trackers report the detector's raw keypoints, occlupose its smoothed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.boxes import box_iou
from posecore.types import Poses, Track, TrackState
from trackers.smoother import FixedLagSmoother
from trackers.tracker import Tracker, TrackerConfig

MATCH_IOU = 0.5  # clean/stressed track matching
CHAIN_IOU = 0.3  # linking one person's detections across frames
TARGET_SCORE = 0.5  # an occlusion target is detected at least this confidently
JITTER_CONF = 0.5  # joints used for jitter
BLOCK_COLOUR = (128, 128, 128)


@dataclass
class FrameTracks:
    """One tracker's output for one frame, as arrays.

    ids int64[T]; boxes float32[T, 4] x1 y1 x2 y2; keypoints float32[T, K, 3]; measured bool[T]: matched to
    a detection in this frame (a track only predicted through a gap is reported by occlupose, not by
    Ultralytics, so measures compare measured tracks only).
    """

    ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    measured: np.ndarray

    @classmethod
    def empty(cls, num_joints: int = 17) -> "FrameTracks":
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros((0, num_joints, 3), np.float32),
                   np.zeros(0, bool))

    @classmethod
    def from_tracks(cls, tracks: list[Track], num_joints: int = 17) -> "FrameTracks":
        if not tracks:
            return cls.empty(num_joints)
        return cls(np.array([t.track_id for t in tracks], np.int64),
                   np.stack([t.box for t in tracks]).astype(np.float32),
                   np.stack([t.keypoints for t in tracks]).astype(np.float32),
                   np.array([t.state == TrackState.CONFIRMED and t.time_since_update == 0 for t in tracks]))

    def only_measured(self) -> "FrameTracks":
        m = self.measured
        return FrameTracks(self.ids[m], self.boxes[m], self.keypoints[m], self.measured[m])

    def same_as(self, other: "FrameTracks", atol: float = 1e-3) -> bool:
        a, b = self.only_measured(), other.only_measured()
        if len(a.ids) != len(b.ids):
            return False
        ia, ib = np.argsort(a.ids), np.argsort(b.ids)
        return bool((a.ids[ia] == b.ids[ib]).all() and np.allclose(a.boxes[ia], b.boxes[ib], atol=atol))


def _match(a: np.ndarray, b: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Index pairs of the maximum-IoU one-to-one matching of boxes a[N, 4] and b[M, 4], IoU >= min_iou."""
    if len(a) == 0 or len(b) == 0:
        return []
    iou = box_iou(a, b)
    r, c = linear_sum_assignment(-iou)
    return [(int(i), int(j)) for i, j in zip(r, c) if iou[i, j] >= min_iou]


# ---------------------------------------------------------------------------------------- ID switches

def id_switches(clean: list[FrameTracks], stressed: list[FrameTracks], compare: np.ndarray,
                min_iou: float = MATCH_IOU) -> int:
    """Switches of the stressed run relative to the clean run (see the module docstring).

    ``compare`` bool[F]: frames whose images are identical in both clips (the only ones matched).
    """
    last: dict[int, int] = {}
    switches = 0
    for f in np.flatnonzero(compare):
        c, s = clean[f].only_measured(), stressed[f].only_measured()
        for i, j in _match(c.boxes, s.boxes, min_iou):
            cid, sid = int(c.ids[i]), int(s.ids[j])
            if cid in last and last[cid] != sid:
                switches += 1
            last[cid] = sid
    return switches


# ---------------------------------------------------------------------------------------- jitter

@dataclass
class Jitter:
    """Mean length of the per-joint second difference over the person's size, and how many went in."""

    mean: float
    samples: int


def jitter(frames: list[FrameTracks], min_conf: float = JITTER_CONF) -> Jitter:
    """Mean normalised keypoint acceleration of measured tracks over consecutive frames."""
    total, count = 0.0, 0
    for f in range(1, len(frames) - 1):
        a, b, c = (frames[i].only_measured() for i in (f - 1, f, f + 1))
        common = np.intersect1d(np.intersect1d(a.ids, b.ids), c.ids)
        if len(common) == 0:
            continue
        ka, kb, kc = (fr.keypoints[_rows(fr.ids, common)] for fr in (a, b, c))
        box = b.boxes[_rows(b.ids, common)]
        size = np.sqrt(np.clip(box[:, 2] - box[:, 0], 1, None) * np.clip(box[:, 3] - box[:, 1], 1, None))
        ok = (ka[..., 2] >= min_conf) & (kb[..., 2] >= min_conf) & (kc[..., 2] >= min_conf)
        acc = np.linalg.norm(kc[..., :2] - 2 * kb[..., :2] + ka[..., :2], axis=-1) / size[:, None]
        total += float(acc[ok].sum())
        count += int(ok.sum())
    return Jitter(total / count if count else float("nan"), count)


def _rows(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each id of ``wanted`` in ``ids`` (all present, ids unique)."""
    order = np.argsort(ids)
    return order[np.searchsorted(ids, wanted, sorter=order)]


def raw_along(tracks: list[FrameTracks], raw: list[Poses], min_iou: float = MATCH_IOU) -> list[FrameTracks]:
    """The raw detections each measured track was matched to (box IoU), under the track's ID: jitter of
    these against jitter of ``tracks`` compares raw and smoothed keypoints on exactly the same samples."""
    out = []
    for tr, poses in zip(tracks, raw):
        t = tr.only_measured()
        pairs = _match(t.boxes, poses.boxes, min_iou)
        i = np.array([a for a, _ in pairs], np.intp)
        j = np.array([b for _, b in pairs], np.intp)
        out.append(FrameTracks(t.ids[i], poses.boxes[j].astype(np.float32), poses.keypoints[j].astype(np.float32),
                               np.ones(len(i), bool)))
    return out


def deviation(smoothed: list[FrameTracks], raw: list[Poses], min_conf: float = JITTER_CONF) -> float:
    """Mean distance, over the person's size, between each measured track's keypoints and the raw
    detection it was matched to (box IoU), for joints of confidence >= ``min_conf``: how far
    smoothing moves the points (0 for raw output)."""
    total, count = 0.0, 0
    for tr, poses in zip(smoothed, raw):
        t = tr.only_measured()
        for i, j in _match(t.boxes, poses.boxes, 0.7):
            k, d = t.keypoints[i], poses.keypoints[j]
            b = poses.boxes[j]
            size = float(np.sqrt(max(b[2] - b[0], 1) * max(b[3] - b[1], 1)))
            ok = d[:, 2] >= min_conf
            total += float(np.linalg.norm(k[ok, :2] - d[ok, :2], axis=-1).sum()) / size
            count += int(ok.sum())
    return total / count if count else float("nan")


# ---------------------------------------------------------------------------------------- occlusion events

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


def donor_crop(image: np.ndarray, box: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """uint8[h, w, 3] crop of ``box`` (with a margin) from a BGR frame."""
    x1, y1, x2, y2 = _expand(box, margin, image.shape)
    return image[y1:y2, x1:x2].copy()


def _expand(box: np.ndarray, margin: float, shape) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = shape[:2]
    return (int(max(0, np.floor(x1 - mw))), int(max(0, np.floor(y1 - mh))),
            int(min(w, np.ceil(x2 + mw))), int(min(h, np.ceil(y2 + mh))))


def render(image: np.ndarray, event: OcclusionEvent, frame: int, crop: np.ndarray | None = None) -> None:
    """Draw ``event``'s occluder for ``frame`` onto ``image`` (BGR uint8[H, W, 3], in place).

    A ``person`` occluder is a row of copies of the donor's crop, 15 % taller than the target, crossing
    in front of it at constant speed relative to it: it enters touching the target's side, covers the
    target completely for ``frames`` frames, and leaves touching the other side.
    """
    box = event.boxes.get(frame)
    if box is None:
        return
    if event.kind == "block":
        x1, y1, x2, y2 = _expand(box, 0.1, image.shape)
        image[y1:y2, x1:x2] = BLOCK_COLOUR
        return
    if crop is None or not crop.size:
        raise ValueError("a person occluder needs the donor's crop")
    tw, th = _event_size(event)
    m = walk_in_frames(event.frames)
    step = tw / m  # relative speed: from touching one side to covering in m frames
    w = int(round(tw + step * (event.frames - 1)))  # wide enough to cover the target for k frames
    h = int(round(1.15 * th))
    i = frame - min(event.boxes)
    offset = event.direction * step * (i - (len(event.boxes) - 1) / 2)
    cx = (box[0] + box[2]) / 2 + offset
    cy = (box[1] + box[3]) / 2
    _paste(image, _tiled(crop, w, h), int(round(cx - w / 2)), int(round(cy - h / 2)))


def _event_size(event: OcclusionEvent) -> tuple[float, float]:
    """Median width and height of the target's box over the event."""
    b = np.stack(list(event.boxes.values()))
    return float(np.median(b[:, 2] - b[:, 0])), float(np.median(b[:, 3] - b[:, 1]))


def _tiled(crop: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8[h, w, 3]: copies of ``crop`` scaled to height ``h``, side by side."""
    cw = max(1, int(round(h * crop.shape[1] / max(crop.shape[0], 1))))
    one = cv2.resize(crop, (cw, max(h, 1)), interpolation=cv2.INTER_LINEAR)
    reps = -(-max(w, 1) // cw)
    row = np.concatenate([one] * reps, axis=1)
    start = (row.shape[1] - w) // 2
    return row[:, start:start + w]


def _paste(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    H, W = image.shape[:2]
    h, w = patch.shape[:2]
    ax1, ay1, ax2, ay2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if ax2 > ax1 and ay2 > ay1:
        image[ay1:ay2, ax1:ax2] = patch[ay1 - y:ay2 - y, ax1 - x:ax2 - x]


# ---------------------------------------------------------------------------------------- Ultralytics trackers

class UltralyticsTracker:
    """An Ultralytics tracker (``bytetrack.yaml``, ``botsort.yaml``) fed with given detections, exactly as
    ``YOLO.track`` feeds it from its own predictions (same config, frame rate and input)."""

    def __init__(self, config: str):
        from posecore.ultralytics_env import import_ultralytics

        import_ultralytics()  # first, so that Ultralytics uses our settings folder, not ~/.config/Ultralytics
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(config)))
        self.tracker = TRACKER_MAP[cfg.tracker_type](args=cfg)

    def update(self, poses: Poses, image: np.ndarray, frame_index: int | None = None) -> list[FrameTracks]:
        return [self._update(poses, image)]

    def flush(self) -> list[FrameTracks]:
        return []

    def _update(self, poses: Poses, image: np.ndarray) -> FrameTracks:
        import torch
        from ultralytics.engine.results import Boxes

        n = len(poses)
        data = np.concatenate([poses.boxes, poses.scores[:, None], np.zeros((n, 1), np.float32)], 1)
        boxes = Boxes(torch.from_numpy(data.astype(np.float32)), image.shape[:2]).cpu().numpy()
        tracks = self.tracker.update(boxes, image)
        if len(tracks) == 0:
            return FrameTracks.empty(poses.num_joints)
        idx = tracks[:, -1].astype(int)
        h, w = image.shape[:2]
        boxes = np.clip(tracks[:, :4], 0, [w, h, w, h])  # as YOLO.track reports them: inside the image
        return FrameTracks(tracks[:, 4].astype(np.int64), boxes.astype(np.float32),
                           poses.keypoints[idx].astype(np.float32), np.ones(len(tracks), bool))


class OccluposeTracker:
    """occlupose's tracker and its fixed-lag smoothing, as ``occlupose process`` runs them, behind the same
    ``update`` / ``flush`` as :class:`UltralyticsTracker` (results come out ``smoothing_lag`` frames late)."""

    def __init__(self, config: TrackerConfig | None = None):
        self.tracker = Tracker(config)
        self.smoother: FixedLagSmoother[int] = FixedLagSmoother(self.tracker.config.smoothing_lag)

    def update(self, poses: Poses, image: np.ndarray | None, frame_index: int) -> list[FrameTracks]:
        tracks = self.tracker.update(poses, frame_index, keep_step=True)
        done = self.smoother.push(poses.num_joints, tracks, self.tracker.last_step)
        return [FrameTracks.from_tracks(tracks, k) for k, tracks in done]

    def flush(self) -> list[FrameTracks]:
        return [FrameTracks.from_tracks(tracks, k) for k, tracks in self.smoother.flush()]


def from_ultralytics_result(result, num_joints: int = 17) -> FrameTracks:
    """FrameTracks from a ``YOLO.track`` result (tracks without an ID yet are left out)."""
    boxes = result.boxes
    if boxes is None or boxes.id is None or len(boxes) == 0:
        return FrameTracks.empty(num_joints)
    kpts = result.keypoints.data.float().cpu().numpy() if result.keypoints is not None else \
        np.zeros((len(boxes), num_joints, 3), np.float32)
    return FrameTracks(boxes.id.cpu().numpy().astype(np.int64), boxes.xyxy.float().cpu().numpy(), kpts,
                       np.ones(len(boxes), bool))


# ---------------------------------------------------------------------------------------- the replay pass

TRACKERS = ("bytetrack", "botsort", "occlupose")


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


def donor_crops(open_frames, plans: list[StressPlan]) -> dict[tuple[str, int], np.ndarray]:
    """(plan name, event number) -> the pasted person's crop, for every ``person`` event."""
    wanted: dict[int, list[tuple[tuple[str, int], np.ndarray]]] = {}
    for p in plans:
        for i, e in enumerate(p.events):
            if e.donor is not None:
                wanted.setdefault(e.donor[0], []).append(((p.name, i), e.donor[1]))
    out: dict[tuple[str, int], np.ndarray] = {}
    if not wanted:
        return out
    last = max(wanted)
    for frame in open_frames():
        for key, box in wanted.get(frame.index, ()):
            out[key] = donor_crop(frame.image, box)
        if frame.index >= last:
            break
    return out
