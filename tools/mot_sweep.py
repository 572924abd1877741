"""Sweep occlupose tracker settings on MOT sequences whose poses ``occlupose bench --mot`` has cached.

    python tools/mot_sweep.py CACHE_DIR SEQ_DIR... --set min_hits=1,2,3 --set new_track_score=0.5,0.6

Every combination of the values is tracked on the cached poses (no detector) and scored with TrackEval;
one row per combination and sequence, then the mean over the sequences, best mean IDF1 first.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from app.bench.mot import find_sequence, load_poses, score_sequence
from posecore.config import from_dict, to_dict
from trackers.tracker import TrackerConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache")
    ap.add_argument("seqs", nargs="+")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2")
    ap.add_argument("--kind", choices=["confirmed", "all"], default="confirmed")
    ap.add_argument("--images", action="store_true", help="decode the frames too (appearance cues for stitching)")
    args = ap.parse_args()
    grid = {k: [_value(v) for v in vals.split(",")] for k, vals in (s.split("=", 1) for s in args.set)}
    seqs = [find_sequence(d) for d in args.seqs]
    poses = {}
    for s in seqs:
        (path,) = sorted(Path(args.cache).glob(f"{s.name}.*.npz"))
        poses[s.name] = load_poses(path)[0][:s.frames]
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] or [{}]
    rows = []
    for combo in combos:
        cfg = from_dict(TrackerConfig, {**to_dict(TrackerConfig()), **combo})
        per = [score_sequence(s, poses[s.name], {"o": cfg}, ultralytics=False, images=args.images)[f"o:{args.kind}"]["scores"]
               for s in seqs]
        rows.append((combo, per))
    rows.sort(key=lambda r: -np.mean([p.idf1 for p in r[1]]))
    print("| settings | " + " | ".join(f"{s.name} HOTA/IDF1/MOTA/IDsw/FP/FN/IDs" for s in seqs) + " | mean IDF1 | mean MOTA |")
    for combo, per in rows:
        cells = [f"{p.hota:.3f}/{p.idf1:.3f}/{p.mota:.3f}/{p.id_switches}/{p.fp}/{p.fn}/{p.result_ids}" for p in per]
        print(f"| {combo} | " + " | ".join(cells) +
              f" | {np.mean([p.idf1 for p in per]):.3f} | {np.mean([p.mota for p in per]):.3f} |")


def _value(text: str):
    if text in ("true", "false"):
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
