"""Result files written as frames complete: JSONL (one record a line) and CSV (one joint a row),
and the COCO results JSON built from the JSONL at the end (written atomically: complete or absent).

Every writer can resume: it keeps what was written for frames before ``start_frame`` and drops the
rest (a half-written last line included).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..pose_score import pose_scores
from ..skeleton import get_skeleton
from ..types import FrameResult
from .records import frame_record


def _close(f, path: Path) -> None:
    """Close a result file; a failing final flush (disk full) is an OutputError, and the handle is released."""
    try:
        f.close()
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _open_append(path: Path):
    try:
        return open(path, "a", encoding="utf-8", newline="")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Complete records of a JSONL file in order, up to the first line that is not a whole JSON object
    (a torn last line from an interrupted write, or damage)."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not isinstance(rec, dict):
                break
            yield rec


def _truncate_lines(path: Path, keep) -> None:
    """Cut ``path`` after the last of its leading complete lines for which ``keep(line_bytes, line_no)`` is
    true. Truncating in place keeps the lines before untouched and needs no free disk space."""
    if not path.exists():
        return
    end = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            try:
                ok = raw.endswith(b"\n") and keep(raw, n)
            except (ValueError, KeyError, TypeError, IndexError):  # a damaged line ends the usable part
                ok = False
            if not ok:
                break
            end += len(raw)
    try:
        os.truncate(path, end)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a small text file whole or not at all (OutputError naming the file on failure)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write_chunks(path, iter((data,)))


def _atomic_write_chunks(path: Path, chunks: Iterator[bytes]) -> None:
    """Write to a temporary file beside ``path`` and rename it over ``path``: readers see the whole
    file or none; on any failure (or an interrupt) the temporary file is removed."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    done = False
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        done = True
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except OSError:
                pass


class JsonlWriter:
    """One JSON record (see ``records.frame_record``) per line, flushed after every frame."""

    def __init__(self, path: str | Path, start_frame: int = 0):
        self.path = Path(path)
        if start_frame > 0:
            _truncate_lines(self.path, lambda raw, n: json.loads(raw)["frame"] < start_frame)
        elif self.path.exists():
            self.path.unlink()
        self._f = _open_append(self.path)

    def write(self, result: FrameResult) -> None:
        # allow_nan=False: every line is strict JSON that any reader accepts (records hold no NaN).
        line = json.dumps(frame_record(result), separators=(",", ":"), allow_nan=False)
        try:
            self._f.write(line + "\n")
            self._f.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        _close(self._f, self.path)


CSV_HEADER = ["frame", "time", "track_id", "joint", "x", "y", "confidence", "seen"]


class CsvWriter:
    """One row per tracked joint: frame, time, track_id, joint name, x, y, confidence, seen (0/1)."""

    def __init__(self, path: str | Path, skeleton: str = "coco17", start_frame: int = 0):
        self.path = Path(path)
        self.joints = get_skeleton(skeleton).joints
        if start_frame > 0 and self.path.exists():
            _truncate_lines(self.path, lambda raw, n: n == 0 or int(raw.split(b",", 1)[0]) < start_frame)
        elif self.path.exists():
            self.path.unlink()
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._f = _open_append(self.path)
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        if fresh:
            self._csv.writerow(CSV_HEADER)
            self._flush()

    def _flush(self) -> None:
        try:
            self._f.write(self._buf.getvalue())
            self._f.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        self._buf.seek(0)
        self._buf.truncate()

    def write(self, result: FrameResult) -> None:
        t = f"{result.time_s:.4f}"
        for track in result.tracks:
            for j, (x, y, c) in enumerate(track.keypoints):
                self._csv.writerow([result.index, t, track.track_id, self.joints[j], f"{x:.2f}", f"{y:.2f}",
                                    f"{c:.4f}", int(track.seen[j])])
        self._flush()  # whole frames only: a crash never leaves half a frame's rows

    def close(self) -> None:
        _close(self._f, self.path)


def coco_results(records) -> list[dict[str, Any]]:
    """COCO keypoint results (one per track and frame) from frame records; image_id is the frame index."""
    return list(_iter_coco_results(records))


def _iter_coco_results(records) -> Iterator[dict[str, Any]]:
    """``score`` ranks the poses (:mod:`posecore.pose_score`); ``box_score`` is the track's own score."""
    for rec in records:
        for t in rec["tracks"]:
            x1, y1, x2, y2 = t["box"]
            score = pose_scores(np.asarray([t["score"]], np.float64), np.asarray(t["keypoints"], np.float64))[0]
            item = {
                "image_id": rec["frame"],
                "category_id": 1,
                "keypoints": [v for kp in t["keypoints"] for v in kp],
                "score": round(float(score), 4) if np.isfinite(score) else 0.0,
                "box_score": t["score"],
                "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                "track_id": t["id"],
            }
            if "source" in rec:
                item["file_name"] = rec["source"]
            yield item


def write_coco_results(jsonl_path: str | Path, out_path: str | Path) -> int:
    """Write the COCO results JSON for a JSONL file atomically (complete or absent), streaming, so a long
    run needs no more memory than one frame; returns the number of results."""
    path = Path(out_path)
    count = 0

    def chunks() -> Iterator[bytes]:
        nonlocal count
        yield b"["
        for item in _iter_coco_results(read_jsonl(jsonl_path)):
            yield (b"," if count else b"") + json.dumps(item, separators=(",", ":"), allow_nan=False).encode()
            count += 1
        yield b"]"

    _atomic_write_chunks(path, chunks())
    return count
