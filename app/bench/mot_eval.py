"""Tracking scored against MOT-format ground truth with TrackEval (HOTA, CLEAR and Identity metrics),
and ``occlupose eval-track RESULTS GT``.

Box level, as MOTChallenge scores it: a result box matches a ground-truth box at IoU >= 0.5 (CLEAR,
Identity); HOTA averages over IoU thresholds 0.05 ... 0.95. Frames are 1-based in MOT files and
0-based in occlupose's JSONL (its frame k is MOT frame k + 1).

What occlupose's boxes mean for scoring: every JSONL track has a ``state``; ``lost`` tracks are
predicted through a gap, not seen in that frame. ``include_lost`` decides whether they count as boxes
(the benchmark measures both; see README, "Identity against ground truth").
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posecore.boxes import box_iou
from posecore.errors import OccluposeError

MATCH_IOU = 0.5


@dataclass
class MotBoxes:
    """Boxes of one sequence with identities: frames int64[N] (1-based), ids int64[N], boxes float64[N, 4]
    x1 y1 x2 y2 in pixels."""

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, np.int64).reshape(-1)
        self.ids = np.asarray(self.ids, np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        if not len(self.frames) == len(self.ids) == len(self.boxes):
            raise ValueError("frames, ids and boxes must have one row per box")

    @classmethod
    def empty(cls) -> "MotBoxes":
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class MotScores:
    """Standard MOT metrics of one sequence (TrackEval's definitions). Counts are boxes, except the
    ``*_ids`` fields (identities) and ``id_switches``."""

    hota: float
    deta: float
    assa: float
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    recall: float
    precision: float
    id_switches: int
    fp: int
    fn: int
    tp: int
    frag: int
    mostly_tracked: int
    mostly_lost: int
    gt_boxes: int
    gt_ids: int
    result_ids: int

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------- reading

def read_mot(path: str | Path, min_conf: float | None = None) -> MotBoxes:
    """Rows ``frame,id,x,y,w,h[,conf,...]`` of a MOT text file (ground truth or results).

    ``min_conf``: keep only rows whose conf column is at least this (MOT ground truth marks rows to
    ignore with conf 0); None keeps every row. Raises OccluposeError naming the file and line on bad input.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OccluposeError(f"{path}: cannot read MOT file: {getattr(e, 'strerror', None) or e}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.replace(" ", "").split(",")
        try:
            values = [float(v) for v in parts[:7]]
        except ValueError:
            raise OccluposeError(f"{path}:{n}: expected numbers frame,id,x,y,w,h[,conf,...], got {line[:60]!r}") from None
        if len(values) < 6 or not all(math.isfinite(v) for v in values):
            raise OccluposeError(f"{path}:{n}: expected finite numbers frame,id,x,y,w,h[,conf,...], got {line[:60]!r}")
        if values[0] < 1 or values[0] != int(values[0]) or values[1] != int(values[1]):
            raise OccluposeError(f"{path}:{n}: frame must be a whole number from 1 and id a whole number")
        if min_conf is not None and len(values) >= 7 and values[6] < min_conf:
            continue
        rows.append(values[:6])
    if not rows:
        return MotBoxes.empty()
    a = np.asarray(rows, np.float64)
    xywh = a[:, 2:6]
    return MotBoxes(a[:, 0], a[:, 1], np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))


def read_jsonl_tracks(path: str | Path, include_lost: bool = False) -> MotBoxes:
    """Track boxes of an occlupose JSONL file (``occlupose process``), frames made 1-based; ``lost``
    (predicted) tracks only with ``include_lost``."""
    from posecore.io.result_writers import read_jsonl

    frames, ids, boxes = [], [], []
    try:
        for rec in read_jsonl(path):
            f = int(rec["frame"]) + 1
            for t in rec.get("tracks", []):
                if t.get("state") == "lost" and not include_lost:
                    continue
                frames.append(f)
                ids.append(int(t["id"]))
                boxes.append([float(v) for v in t["box"]])
    except OSError as e:
        raise OccluposeError(f"{path}: cannot read results: {e.strerror or e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise OccluposeError(f"{path}: not an occlupose JSONL results file ({type(e).__name__}: {e})") from None
    if not frames:
        return MotBoxes.empty()
    return MotBoxes(frames, ids, boxes)


def read_results(path: str | Path, include_lost: bool = False) -> MotBoxes:
    """Results from an occlupose JSONL file (by its .jsonl suffix) or a MOT text file."""
    path = Path(path)
    if not path.is_file():
        raise OccluposeError(f"{path}: no such results file")
    if path.suffix.lower() == ".jsonl":
        return read_jsonl_tracks(path, include_lost)
    return read_mot(path)


def write_mot(path: str | Path, boxes: MotBoxes) -> None:
    """Write ``boxes`` as MOT text rows ``frame,id,x,y,w,h,1,-1,-1,-1``, in frame order."""
    order = np.lexsort((boxes.ids, boxes.frames))
    lines = []
    for i in order:
        x1, y1, x2, y2 = boxes.boxes[i]
        lines.append(f"{boxes.frames[i]},{boxes.ids[i]},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------- scoring

def _sequence_data(gt: MotBoxes, res: MotBoxes, num_frames: int | None) -> dict:
    """TrackEval's per-sequence input: per time step the ids (renumbered 0..n-1) and the IoU matrix."""
    last = int(max(gt.frames.max(initial=0), res.frames.max(initial=0)))
    t_count = max(last, num_frames or 0)
    gt_ids, gt_inv = np.unique(gt.ids, return_inverse=True)
    res_ids, res_inv = np.unique(res.ids, return_inverse=True)
    data: dict = {"num_timesteps": t_count, "gt_ids": [], "tracker_ids": [], "similarity_scores": [],
                  "num_gt_dets": len(gt), "num_tracker_dets": len(res), "num_gt_ids": len(gt_ids),
                  "num_tracker_ids": len(res_ids), "seq": "seq"}
    for f in range(1, t_count + 1):
        g, r = gt.frames == f, res.frames == f
        data["gt_ids"].append(gt_inv[g].astype(int))
        data["tracker_ids"].append(res_inv[r].astype(int))
        data["similarity_scores"].append(box_iou(gt.boxes[g], res.boxes[r]).astype(np.float64))
    return data


def evaluate(gt: MotBoxes, res: MotBoxes, num_frames: int | None = None) -> MotScores:
    """Score ``res`` against ``gt`` with TrackEval (HOTA, CLEAR at IoU 0.5, Identity at IoU 0.5)."""
    import trackeval

    for name, b in (("ground truth", gt), ("results", res)):
        if len(b) and len(np.unique(np.stack([b.frames, b.ids], 1), axis=0)) != len(b):
            raise OccluposeError(f"{name}: an id appears twice in one frame")
    data = _sequence_data(gt, res, num_frames)
    quiet = {"PRINT_CONFIG": False}
    hota = trackeval.metrics.HOTA(quiet).eval_sequence(data)
    clear = trackeval.metrics.CLEAR({**quiet, "THRESHOLD": MATCH_IOU}).eval_sequence(data)
    ident = trackeval.metrics.Identity({**quiet, "THRESHOLD": MATCH_IOU}).eval_sequence(data)
    return MotScores(
        hota=float(np.mean(hota["HOTA"])), deta=float(np.mean(hota["DetA"])), assa=float(np.mean(hota["AssA"])),
        mota=float(clear["MOTA"]), motp=float(clear["MOTP"]), idf1=float(ident["IDF1"]), idp=float(ident["IDP"]),
        idr=float(ident["IDR"]), recall=float(clear["CLR_Re"]), precision=float(clear["CLR_Pr"]),
        id_switches=int(clear["IDSW"]), fp=int(clear["CLR_FP"]), fn=int(clear["CLR_FN"]), tp=int(clear["CLR_TP"]),
        frag=int(clear["Frag"]), mostly_tracked=int(clear["MT"]), mostly_lost=int(clear["ML"]),
        gt_boxes=len(gt), gt_ids=data["num_gt_ids"], result_ids=data["num_tracker_ids"])


# ---------------------------------------------------------------------------------------- command

def register(subparsers) -> None:
    p = subparsers.add_parser("eval-track", help="score a tracking results file against MOT ground truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="occlupose JSONL (from occlupose process) or a MOT text file (1-based frames)")
    p.add_argument("gt", help="MOT ground truth: gt.txt, or a sequence folder holding gt/gt.txt")
    p.add_argument("--include-lost", action="store_true",
                   help="count occlupose's lost (predicted) tracks as boxes too (default: only tracks seen)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=cmd_eval_track)


def gt_file(path: str | Path) -> Path:
    """The ground-truth file: ``path`` itself, or ``path/gt/gt.txt`` for a sequence folder."""
    p = Path(path)
    if p.is_dir():
        p = p / "gt" / "gt.txt"
    if not p.is_file():
        raise OccluposeError(f"{path}: no MOT ground truth there (a gt.txt or a folder with gt/gt.txt)")
    return p


def cmd_eval_track(args: argparse.Namespace) -> int:
    import json

    gt = read_mot(gt_file(args.gt), min_conf=1e-9)
    if len(gt) == 0:
        raise OccluposeError(f"{args.gt}: the ground truth holds no boxes")
    scores = evaluate(gt, read_results(args.results, args.include_lost))
    if args.json:
        print(json.dumps(scores.as_dict(), indent=2))
        return 0
    print(format_header())
    print(format_row(Path(args.results).name, scores))
    return 0


COLUMNS = ("HOTA", "IDF1", "MOTA", "IDsw", "FP", "FN", "recall", "IDs (GT)")


def format_header(first: str = "results") -> str:
    return f"| {first} | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1)


def format_row(label: str, s: MotScores) -> str:
    return (f"| {label} | {s.hota:.3f} | {s.idf1:.3f} | {s.mota:.3f} | {s.id_switches} | {s.fp} | {s.fn} | "
            f"{s.recall:.3f} | {s.result_ids} ({s.gt_ids}) |")
