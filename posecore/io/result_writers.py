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

from ..errors import OutputError
from ..skeleton import get_skeleton
from ..types import FrameResult
from .records import frame_record


def _open_append(path: Path):
    try:
        return open(path, "a", encoding="utf-8", newline="")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Complete records of a JSONL file in order; a torn last line (an interrupted write) is ignored."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                break


def _truncate_lines(path: Path, keep) -> None:
    """Rewrite ``path`` keeping complete lines for which ``keep(line_bytes, line_no)`` is true, stopping
    at the first line it rejects; done through a temporary file so a crash cannot lose the old one."""
    if not path.exists():
        return
    out = bytearray()
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            if not raw.endswith(b"\n") or not keep(raw, n):
                break
            out += raw
    _atomic_write_bytes(path, bytes(out))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


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
        line = json.dumps(frame_record(result), separators=(",", ":"))
        try:
            self._f.write(line + "\n")
            self._f.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        self._f.close()


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
        self._f.close()


def coco_results(records) -> list[dict[str, Any]]:
    """COCO keypoint results (one per track and frame) from frame records; image_id is the frame index."""
    out = []
    for rec in records:
        for t in rec["tracks"]:
            x1, y1, x2, y2 = t["box"]
            item = {
                "image_id": rec["frame"],
                "category_id": 1,
                "keypoints": [v for kp in t["keypoints"] for v in kp],
                "score": t["score"],
                "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                "track_id": t["id"],
            }
            if "source" in rec:
                item["file_name"] = rec["source"]
            out.append(item)
    return out


def write_coco_results(jsonl_path: str | Path, out_path: str | Path) -> int:
    """Write the COCO results JSON for a JSONL file atomically; returns the number of results."""
    results = coco_results(read_jsonl(jsonl_path))
    _atomic_write_bytes(Path(out_path), json.dumps(results, separators=(",", ":")).encode())
    return len(results)
