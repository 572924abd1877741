"""Does an appearance cue tell people apart? A probe on a MOT sequence's ground-truth boxes.

    python tools/appearance_probe.py ../shared/data/mot/TUD-Stadtmitte --pairs 6,7 5,9 --every 3 [--feature F]

Every ``every``-th frame, each ground-truth person gets an embedding (``--feature``):

* ``neck`` (default): YOLO11n-pose runs once with its neck maps captured (P3-P5, as the refiner reads
  them), read on a 5 x 9 grid over the middle of the box (the inner 60 % of its width, 15-85 % of its
  height), averaged and L2-normalised;
* ``torso``: the stitcher's hue-saturation histogram of the middle of the box (trackers.stitching);
* ``stripes``: Lab colour histograms (8 x 8 x 4 bins) of six horizontal stripes of the box's inner 70 %
  of width, the classic hand-made re-identification descriptor.

Histograms are square-rooted and L2-normalised, so their cosine is the Bhattacharyya coefficient.
Printed: the cosine similarity of one person with themself at least ``--apart`` frames later against
that of two different people, per named pair, and how often a sample's most similar sample from another
time is the same person. A cue worth giving the stitcher keeps the first clearly above the second.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from app.bench.mot import find_sequence
from posecore.detector import Detector
from posecore.io.sources import open_source
from trackers.stitching import torso_colour

FEATURES = ("neck", "torso", "stripes")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-9)


def _stripes(image: np.ndarray, box: np.ndarray, n: int = 6) -> np.ndarray | None:
    x1, y1, x2, y2 = box
    crop = image[int(y1):int(y2), int(x1 + 0.15 * (x2 - x1)):int(x2 - 0.15 * (x2 - x1))]
    if crop.shape[0] < n or crop.shape[1] < 2:
        return None
    lab = cv2.cvtColor(cv2.resize(crop, (32, 96)), cv2.COLOR_BGR2LAB)
    hists = [cv2.calcHist([lab[k * 96 // n:(k + 1) * 96 // n]], [0, 1, 2], None, [8, 8, 4], [0, 256] * 3).ravel()
             for k in range(n)]
    return _unit(np.concatenate([np.sqrt(h / max(h.sum(), 1e-9)) for h in hists]))


def embeddings(seq_dir: str, every: int, feature: str = "neck") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors float[N, C], ground-truth ids int[N], 1-based frames int[N]) of the sequence's people."""
    seq = find_sequence(seq_dir)
    det = None
    if feature == "neck":
        det = Detector(imgsz=640, device="cpu", runtime="torch")
        det.capture_features()
    vecs, ids, frames = [], [], []
    for f in open_source(str(seq.video)):
        t = f.index + 1
        if t > seq.frames:
            break
        if t % every:
            continue
        maps = det.detect(f.image).features if det is not None else None
        here = seq.gt.frames == t
        h, w = f.image.shape[:2]
        for gid, box in zip(seq.gt.ids[here], seq.gt.boxes[here]):
            x1, y1, x2, y2 = box
            inside = np.clip(box, 0, [w, h, w, h])
            if maps is not None:
                xs = np.linspace(x1 + 0.2 * (x2 - x1), x2 - 0.2 * (x2 - x1), 5)
                ys = np.linspace(y1 + 0.15 * (y2 - y1), y1 + 0.85 * (y2 - y1), 9)
                grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
                v = _unit(maps.sample(grid, f.image.shape[:2]).mean(0).numpy())
            elif feature == "torso":
                hist = torso_colour(f.image, inside, np.zeros((17, 3)), np.zeros(17, bool))
                v = None if hist is None else _unit(np.sqrt(hist))
            else:
                v = _stripes(f.image, inside)
            if v is None:
                continue  # a box cut down to nothing by the frame's edge
            vecs.append(v)
            ids.append(int(gid))
            frames.append(t)
    return np.stack(vecs), np.array(ids), np.array(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sequence", help="MOT sequence folder (SEQ/SEQ.mp4 + SEQ/gt/gt.txt)")
    ap.add_argument("--pairs", nargs="*", default=[], metavar="A,B", help="ground-truth ids to compare")
    ap.add_argument("--every", type=int, default=3, help="use every n-th frame")
    ap.add_argument("--apart", type=int, default=15, help="least frames between two samples compared")
    ap.add_argument("--feature", choices=FEATURES, default="neck", help="the appearance cue (above)")
    args = ap.parse_args()
    x, g, t = embeddings(args.sequence, args.every, args.feature)
    sim = x @ x.T
    far = np.abs(t[:, None] - t[None]) >= args.apart
    same, other = sim[(g[:, None] == g[None]) & far], sim[g[:, None] != g[None]]
    print(f"{len(g)} samples of {len(set(g.tolist()))} people, {x.shape[1]} channels")
    print(f"same person, >= {args.apart} frames apart: mean {same.mean():.3f} (10th percentile "
          f"{np.percentile(same, 10):.3f}); two people: mean {other.mean():.3f} (90th {np.percentile(other, 90):.3f})")
    for pair in args.pairs:
        a, b = (int(v) for v in pair.split(","))
        ia, ib = g == a, g == b
        own = sim[np.ix_(ia, ia)][far[np.ix_(ia, ia)]]
        print(f"person {a} with themself {own.mean():.3f}, with person {b} {sim[np.ix_(ia, ib)].mean():.3f}")
    hits = [g[np.flatnonzero(far[i])[np.argmax(sim[i, far[i]])]] == g[i] for i in range(len(g)) if far[i].any()]
    print(f"most similar sample >= {args.apart} frames apart is the same person: {100 * np.mean(hits):.1f} %")


if __name__ == "__main__":
    main()
