"""Identity against ground truth: ``occlupose bench --mot SEQ...``.

Each sequence is a folder in MOTChallenge layout with its video: ``SEQ/SEQ.mp4`` (or any one video in
it) and ``SEQ/gt/gt.txt`` (1-based frames). The pipeline's detector and pose estimator run once per
sequence; their poses are cached in the output folder (``cache/``), so a rerun or a sweep of tracker
settings replays only the trackers. occlupose and Ultralytics' ByteTrack and BoT-SORT then track the
SAME poses, fed frame by frame with the decoded images (BoT-SORT's camera-motion compensation needs
them), and every result is scored by TrackEval (``app.bench.mot_eval``: HOTA, IDF1, MOTA at IoU 0.5).

occlupose is scored twice: ``confirmed`` (the tracks seen in each frame) and ``all`` (also its lost
tracks, predicted through a gap, which the files flag with ``state: lost``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecore.config import to_dict
from posecore.errors import OccluposeError
from app.run.pipeline import Pipeline, PipelineConfig, torch_threads
from posecore.types import Poses, Track, TrackState
from trackers.camera_motion import CameraMotion
from trackers.stitching import Stitcher, forget_after, stitch_settings
from trackers.tracker import TrackerConfig

from .metrics import FrameTracks
from .speed import limited
from .tracker_adapters import OccluposeTracker, UltralyticsTracker, frame_width
from .mot_eval import COLUMNS, MotBoxes, MotScores, evaluate, format_row, gt_file, read_mot

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
ULTRALYTICS = {"bytetrack": ("bytetrack.yaml", "Ultralytics ByteTrack"),
               "botsort": ("botsort.yaml", "Ultralytics BoT-SORT")}


@dataclass
class Sequence:
    """A ground-truth sequence: its name, video and ground-truth boxes."""

    name: str
    video: Path
    gt: MotBoxes
    frames: int


def find_sequence(folder: str | Path) -> Sequence:
    """The sequence in ``folder`` (OccluposeError when the video or the ground truth is missing)."""
    d = Path(folder)
    if not d.is_dir():
        raise OccluposeError(f"{folder}: not a sequence folder (expected SEQ/SEQ.mp4 and SEQ/gt/gt.txt)")
    videos = sorted(p for p in d.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    named = [p for p in videos if p.stem == d.name]
    if not (named or len(videos) == 1):
        raise OccluposeError(f"{folder}: expected one video, {d.name}.mp4 or another, found {len(videos)}")
    gt = read_mot(gt_file(d), min_conf=1e-9)
    if len(gt) == 0:
        raise OccluposeError(f"{folder}: the ground truth holds no boxes")
    return Sequence(d.name, (named or videos)[0], gt, int(gt.frames.max()))


# ---------------------------------------------------------------------------------------- detections

def _cache_key(cfg: PipelineConfig, video: Path) -> str:
    d, p = cfg.detector, cfg.pose
    st = video.stat()
    text = json.dumps([str(video.resolve()), st.st_size, st.st_mtime_ns, d.imgsz, d.conf, d.iou, str(d.weights),
                       p.backend, str(p.weights), p.refine, p.seen_threshold, to_dict(cfg.passes)])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def save_poses(path: Path, poses: list[Poses], detect_ms: float) -> None:
    """All frames' poses in one .npz: rows concatenated, ``counts`` int64[F] rows per frame."""
    k = poses[0].num_joints if poses else 17
    cat = (lambda name, shape: np.concatenate([getattr(p, name) for p in poses]) if poses else np.zeros(shape))
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, counts=np.array([len(p) for p in poses], np.int64), boxes=cat("boxes", (0, 4)),
                        scores=cat("scores", (0,)), keypoints=cat("keypoints", (0, k, 3)),
                        seen=cat("seen", (0, k)), skeleton=np.array(poses[0].skeleton if poses else "coco17"),
                        detect_ms=np.array(detect_ms))
    tmp.replace(path)


def load_poses(path: Path) -> tuple[list[Poses], float]:
    z = np.load(path)
    ends = np.cumsum(z["counts"])
    starts = ends - z["counts"]
    skeleton = str(z["skeleton"])
    poses = [Poses(z["boxes"][a:b], z["scores"][a:b], z["keypoints"][a:b], z["seen"][a:b], skeleton)
             for a, b in zip(starts, ends)]
    return poses, float(z["detect_ms"])


def sequence_poses(seq: Sequence, pipeline: Pipeline, cfg: PipelineConfig, cache: Path,
                   progress: Callable[[int], object] | None = None) -> tuple[list[Poses], float]:
    """The pipeline's poses for every frame of ``seq`` and the mean detection + pose ms per frame,
    from the cache when the same video was detected with the same settings."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{seq.name}.{_cache_key(cfg, seq.video)}.npz"
    if path.exists():
        return load_poses(path)
    poses, spent = [], 0.0
    with torch_threads(pipeline.concurrency[1]):
        for frame in limited(str(seq.video), None):
            t0 = time.perf_counter()
            poses.append(pipeline.estimate(frame.image))
            spent += time.perf_counter() - t0
            if progress is not None:
                progress(1)
    if len(poses) < seq.frames:
        raise OccluposeError(f"{seq.video}: {len(poses)} frames, but the ground truth reaches frame {seq.frames}")
    ms = 1000 * spent / max(1, len(poses))
    save_poses(path, poses, ms)
    return poses, ms


# ---------------------------------------------------------------------------------------- tracking

def run_trackers(video: Path | None, poses: list[Poses], factories: dict[str, Callable[[], object]]
                 ) -> tuple[dict[str, list[FrameTracks]], dict[str, float]]:
    """Every tracker over the same poses, frame by frame with the decoded images, in one decoding pass:
    per tracker its FrameTracks of every frame and its mean CPU ms per frame. ``video`` None: no images
    (for trackers that do not look at them; a settings sweep then skips decoding)."""
    trackers = {name: make() for name, make in factories.items()}
    out: dict[str, list[FrameTracks]] = {name: [] for name in trackers}
    cpu = dict.fromkeys(trackers, 0.0)
    n = len(poses)
    frames = limited(str(video), n) if video is not None else ((i, None) for i in range(n))
    for frame in frames:
        index, image = (frame.index, frame.image) if video is not None else frame
        for name, tr in trackers.items():
            c0 = time.thread_time()
            out[name] += tr.update(poses[index], image, index)
            cpu[name] += time.thread_time() - c0
    for name, tr in trackers.items():
        c0 = time.thread_time()
        out[name] += tr.flush()
        cpu[name] += time.thread_time() - c0
    return out, {name: 1000 * s / max(1, n) for name, s in cpu.items()}


def as_mot(frames: list[FrameTracks], measured_only: bool) -> MotBoxes:
    """Boxes of a tracker's frames (list index = 0-based frame) as MOT boxes (1-based frames)."""
    f, ids, boxes = [], [], []
    for i, ft in enumerate(frames):
        t = ft.only_measured() if measured_only else ft
        f += [i + 1] * len(t.ids)
        ids.append(t.ids)
        boxes.append(t.boxes)
    if not f:
        return MotBoxes.empty()
    return MotBoxes(f, np.concatenate(ids), np.concatenate(boxes))


class OccluposeMotTracker(OccluposeTracker):
    """occlupose's tracker, fixed-lag smoother and stitcher, as ``occlupose process`` runs them; a frame's
    ``measured`` tracks are those its files hold as confirmed (interpolated ones included), the others
    are predicted (lost)."""

    def __init__(self, config: TrackerConfig | None = None):
        super().__init__(config)
        c = self.tracker.config
        self.stitcher: Stitcher[int] = Stitcher(stitch_settings(c), forget_after(c))
        self.camera = CameraMotion(c.camera_motion)

    def update(self, poses: Poses, image: np.ndarray | None, frame_index: int) -> list[FrameTracks]:
        tracks = self.tracker.update(poses, frame_index, keep_step=True, warp=self.camera.warp(image),
                                     width=frame_width(image))
        return self._stitch(self.smoother.push((poses.num_joints, image), tracks, self.tracker.last_step))

    def flush(self) -> list[FrameTracks]:
        return self._stitch(self.smoother.flush()) + [_frame_tracks(t, k) for k, t in self.stitcher.flush()]

    def _stitch(self, smoothed) -> list[FrameTracks]:
        out = []
        for (k, image), tracks in smoothed:
            out += self.stitcher.push(k, tracks, image)
        return [_frame_tracks(t, k) for k, t in out]


def _frame_tracks(tracks: list[Track], num_joints: int) -> FrameTracks:
    ft = FrameTracks.from_tracks(tracks, num_joints)
    ft.measured = np.array([t.state == TrackState.CONFIRMED for t in tracks], bool)
    return ft


def occlupose_factory(config: TrackerConfig) -> Callable[[], object]:
    return lambda: OccluposeMotTracker(config)


def score_sequence(seq: Sequence, poses: list[Poses], variants: dict[str, TrackerConfig],
                   ultralytics: bool = True, images: bool = True) -> dict:
    """Scores of Ultralytics' trackers and of each occlupose variant (confirmed and all) on ``seq``;
    ``images`` False: the trackers get no images (occlupose variants only)."""
    factories: dict[str, Callable[[], object]] = {}
    if ultralytics:
        factories.update({k: (lambda y=yaml: UltralyticsTracker(y)) for k, (yaml, _) in ULTRALYTICS.items()})
    factories.update({name: occlupose_factory(c) for name, c in variants.items()})
    runs, cpu_ms = run_trackers(seq.video if images else None, poses, factories)
    rows: dict[str, dict] = {}
    for name, frames in runs.items():
        if name in ULTRALYTICS:
            rows[name] = {"label": ULTRALYTICS[name][1], "scores": _eval(seq, frames, False), "cpu_ms": cpu_ms[name]}
        else:
            for kind, measured in (("confirmed", True), ("all", False)):
                rows[f"{name}:{kind}"] = {"label": f"{name} ({kind})", "scores": _eval(seq, frames, measured),
                                         "cpu_ms": cpu_ms[name]}
    return rows


def _eval(seq: Sequence, frames: list[FrameTracks], measured_only: bool) -> MotScores:
    return evaluate(seq.gt, as_mot(frames, measured_only), num_frames=len(frames))


# ---------------------------------------------------------------------------------------- the bench

def run_mot_bench(folders: list[str], pipeline: Pipeline, cfg: PipelineConfig, out: Path,
                  quiet: bool = False) -> dict:
    """Detect (or load from the cache) and score every sequence; the report as a dict."""
    from tqdm import tqdm

    seqs = [find_sequence(f) for f in folders]
    report: dict = {"imgsz": cfg.detector.imgsz, "weights": Path(pipeline.detector.weights).name,
                    "match_iou": 0.5, "sequences": []}
    for seq in seqs:
        with tqdm(total=seq.frames, desc=f"{seq.name}: detect", disable=quiet, leave=False) as bar:
            poses, detect_ms = sequence_poses(seq, pipeline, cfg, out / "cache", bar.update)
        rows = score_sequence(seq, poses[:seq.frames], {"occlupose": cfg.tracker})
        report["sequences"].append({
            "name": seq.name, "frames": seq.frames, "gt_ids": int(len(np.unique(seq.gt.ids))),
            "detect_ms": round(detect_ms, 2),
            "trackers": {k: {"label": r["label"], "cpu_ms": round(r["cpu_ms"], 3), **r["scores"].as_dict()}
                         for k, r in rows.items()},
        })
    report["targets"] = mot_targets(report)
    return report


def mot_targets(report: dict) -> dict:
    """The issue's ground-truth targets per sequence, for occlupose as its files are scored by default."""
    out = {}
    for s in report["sequences"]:
        t = s["trackers"]
        ultra = [t[k] for k in ULTRALYTICS if k in t]
        occ = t.get("occlupose:confirmed")
        if not ultra or occ is None:
            continue
        best = {m: max(u[m] for u in ultra) for m in ("idf1", "mota", "hota")}
        fewest_sw = min(u["id_switches"] for u in ultra)
        out[s["name"]] = {
            "idf1>=best+0.10": {"value": [round(occ["idf1"], 3), round(best["idf1"], 3)],
                                "met": occ["idf1"] >= best["idf1"] + 0.10},
            "mota>=best": {"value": [round(occ["mota"], 3), round(best["mota"], 3)], "met": occ["mota"] >= best["mota"]},
            "hota>best": {"value": [round(occ["hota"], 3), round(best["hota"], 3)], "met": occ["hota"] > best["hota"]},
            "id_switches<=half": {"value": [occ["id_switches"], fewest_sw],
                                  "met": occ["id_switches"] <= fewest_sw / 2},
        }
    return out


def format_mot_report(report: dict) -> str:
    lines = [f"identity against ground truth (TrackEval; IoU 0.5; imgsz {report['imgsz']}, {report['weights']}; "
             f"all trackers on the same poses)",
             "| sequence: tracker | " + " | ".join(COLUMNS) + " | track CPU ms/frame |",
             "|" + "---|" * (len(COLUMNS) + 2)]
    for s in report["sequences"]:
        for r in s["trackers"].values():
            sc = MotScores(**{k: v for k, v in r.items() if k in MotScores.__dataclass_fields__})
            lines.append(format_row(f"{s['name']}: {r['label']}", sc) + f" {r['cpu_ms']:.2f} |")
        lines.append(f"  ({s['frames']} frames; detection + pose {s['detect_ms']:.0f} ms/frame, measured when cached)")
    for seq, items in report.get("targets", {}).items():
        for key, val in items.items():
            lines.append(f"  {'met    ' if val['met'] else 'NOT met'}  {seq}: {key}: {val['value']}")
    return "\n".join(lines)
