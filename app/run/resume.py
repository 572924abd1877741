"""Resuming a batch run: the settings record (``STEM.run.json``) that a resume must match, the frames an
earlier run left, and the replay that brings the tracker back to the state it had.

The JSONL keeps the exact per-person poses each frame fed to the tracker, so a resumed run replays the
tracker over the frames already done (no inference) and continues from the first missing frame; its
results are identical to an uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from posecore.errors import OccluposeError
from posecore.io.records import poses_from_record
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import Frame
from posecore.types import FrameResult

from .pipeline import Pipeline

RUN_FILE_VERSION = 1


def frames_done(jsonl: Path) -> int:
    """How many complete, contiguous records (frame 0, 1, 2, ...) an earlier run left; read as a stream."""
    done = 0
    if jsonl.exists():
        for i, rec in enumerate(read_jsonl(jsonl)):
            if rec.get("frame") != i or not _replayable(rec):
                break
            done += 1
    return done


def _replayable(rec: dict) -> bool:
    """Whether a record's poses read back (a record edited or damaged by hand ends the usable part)."""
    try:
        kpts = rec["poses"]["keypoints"]
        poses_from_record(rec, len(kpts[0]) if kpts else 17)
        return True
    except (KeyError, TypeError, ValueError, IndexError):
        return False


def check_resume(run_file: Path, settings: dict) -> dict:
    """The earlier run's record in ``run_file``; raises OccluposeError unless ``settings`` are those it
    recorded."""
    try:
        old = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise OccluposeError(f"cannot resume: {run_file} is missing or damaged; run again without --resume") from None
    if not isinstance(old, dict):
        raise OccluposeError(f"cannot resume: {run_file} is damaged; run again without --resume")
    if old.get("source") != settings["source"]:
        raise OccluposeError(f"cannot resume: the earlier run in this folder processed {old.get('source')!r}")
    if old.get("config") != settings["config"]:
        diff = _first_difference(old.get("config"), settings["config"])
        raise OccluposeError(f"cannot resume: setting {diff} differs from the earlier run; run again without --resume")
    if old.get("source_size") is not None and old.get("source_size") != settings["source_size"]:
        raise OccluposeError(f"cannot resume: {settings['source']} has changed since the earlier run; "
                             "run again without --resume")
    return old


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


def replayed_then_fresh(pipeline: Pipeline, frames: Iterable[Frame], jsonl: Path, start: int,
                        num_joints: int) -> Iterator[FrameResult]:
    """Replayed results for the frames before ``start``, then fresh ones from ``pipeline.stream``."""
    frames = iter(frames)
    if start:
        # Replay: the same frames with their recorded poses, so the tracker reaches the exact state
        # it had, and the video is drawn again; no inference. Records stream from the file.
        records = read_jsonl(jsonl)
        try:
            for frame, rec in zip(frames, records):
                yield from pipeline.replay(frame, poses_from_record(rec, num_joints))
                if frame.index + 1 >= start:
                    break
        finally:
            records.close()
    yield from pipeline.stream(frames)
