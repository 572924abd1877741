"""The Python API: ``track(source, **settings)`` yields a :class:`FrameResult` per frame, the same results
``occlupose process`` writes (smoothed with the same look-ahead, stills for image folders), and
conversions of results to the JSONL record, NumPy arrays and a per-joint pandas DataFrame like the CSV.

Settings are the keys of ``--set`` (``configs/pipeline.yaml``, ``configs/tracker.yaml``), checked by the
same schema: a section as a mapping (``tracker={"max_lost": 60}``), a key with ``__`` for the dot
(``tracker__max_lost=60``), or the command line's short names (``imgsz``, ``conf``, ``device``, ``pose``,
``weights``, ``pair_weights``, ``det_weights``). A bad setting raises :class:`posecore.errors.ConfigError` (a ValueError)
with the command line's one-line message; a source that cannot be read raises ``SourceError``; both are
``OccluposeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from posecore.config import dotted_keys, from_dict
from posecore.errors import ConfigError, OccluposeError
from posecore.io.records import frame_record
from posecore.io.sources import FrameSource, open_source
from app.run.pipeline import Pipeline, PipelineConfig
from posecore.skeleton import get_skeleton
from posecore.types import FrameResult

# The command line's short flags, as settings keys.
SHORT_KEYS = {"device": "detector.device", "imgsz": "detector.imgsz", "conf": "detector.conf",
              "pose": "pose.backend", "weights": "pose.weights", "pair_weights": "pose.pair_weights",
              "det_weights": "detector.weights"}
CSV_COLUMNS = ("frame", "time", "track_id", "joint", "x", "y", "confidence", "seen")


def settings_mapping(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword settings as the nested mapping ``--config`` and ``--set`` give (see the module doc)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        dotted = SHORT_KEYS.get(key, key.replace("__", "."))
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: {part} is given as a value and as a section")
        last = parts[-1]
        if isinstance(value, Mapping) and isinstance(node.get(last), dict):
            node[last].update(value)
        else:
            node[last] = dict(value) if isinstance(value, Mapping) else value
    return out


def make_config(**settings: Any) -> PipelineConfig:
    """The pipeline's settings from keyword settings; raises ConfigError for a bad one."""
    return from_dict(PipelineConfig, settings_mapping(settings))


def track(source: str | int | Path | FrameSource, *, max_frames: int | None = None, stream_timeout_s: float = 10.0,
          **settings: Any) -> Iterator[FrameResult]:
    """Track poses in ``source`` (video file, camera index, stream URL, image folder or image, or a
    FrameSource); yields one FrameResult per frame, in order. Settings are checked now (ConfigError);
    the source is opened and the models loaded when iteration starts."""
    from app.process import ProcessOptions, source_config

    nested = settings_mapping(settings)
    config = from_dict(PipelineConfig, nested)
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise ConfigError(f"max_frames: expected a whole number of at least 1, got {max_frames!r}")
    opts = ProcessOptions(source=str(source), outdir=Path("."), config=config, given=dotted_keys(nested))
    return _results(source, opts, source_config, max_frames, stream_timeout_s)


def _results(source, opts, source_config, max_frames: int | None, stream_timeout_s: float) -> Iterator[FrameResult]:
    from app.process import limit_frames
    from app.run.autosize import pipeline_for_source

    src = source if isinstance(source, FrameSource) else open_source(source, timeout_s=stream_timeout_s)
    try:
        pipeline, frames, _ = pipeline_for_source(source_config(opts, src), limit_frames(src, max_frames))
        yield from pipeline.stream(frames)
    finally:
        if src is not source:
            src.close()


def as_dict(result: FrameResult) -> dict[str, Any]:
    """The frame's JSONL record (``frame``, ``time``, ``tracks``, ``poses``; see README), JSON-ready."""
    return frame_record(result)


def as_arrays(result: FrameResult) -> dict[str, np.ndarray]:
    """The frame's T tracks as arrays: ``ids`` int64[T], ``boxes`` float32[T, 4] (x1 y1 x2 y2), ``scores``
    float32[T], ``keypoints`` float32[T, K, 3] (x, y, confidence), ``seen`` bool[T, K]."""
    k = result.poses.num_joints
    tracks = result.tracks
    return {
        "ids": np.array([t.track_id for t in tracks], np.int64),
        "boxes": np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
        "scores": np.array([t.score for t in tracks], np.float32),
        "keypoints": np.array([t.keypoints for t in tracks], np.float32).reshape(-1, k, 3),
        "seen": np.array([t.seen for t in tracks], bool).reshape(-1, k),
    }


def as_dataframe(results: FrameResult | Iterable[FrameResult]):
    """One row per tracked joint, the columns of the CSV (frame, time, track_id, joint, x, y, confidence,
    seen); needs pandas."""
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise OccluposeError("as_dataframe needs pandas: pip install pandas") from None
    if isinstance(results, FrameResult):
        results = [results]
    rows = []
    for r in results:
        joints = get_skeleton(r.poses.skeleton).joints
        for t in r.tracks:
            for j, (x, y, c) in enumerate(np.asarray(t.keypoints, np.float64)):
                rows.append((r.index, r.time_s, t.track_id, joints[j], x, y, c, bool(t.seen[j])))
    return pd.DataFrame.from_records(rows, columns=list(CSV_COLUMNS))


__all__ = ["track", "make_config", "settings_mapping", "as_dict", "as_arrays", "as_dataframe", "Pipeline",
           "PipelineConfig", "open_source", "FrameResult", "ConfigError", "OccluposeError"]
