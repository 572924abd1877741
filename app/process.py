"""The batch job behind ``occlupose process``: run the pipeline over a source and write every output
as frames complete.

Outputs in OUTDIR, named after the source (STEM): STEM.jsonl (a record per frame), STEM.csv (a row per
tracked joint), STEM.mp4 (annotated video; for image folders, annotated images in STEM_annotated/),
STEM.coco.json (COCO keypoint results with track_id, written when the run completes) and
STEM.run.json (the settings, used by --resume).

Resume: the JSONL keeps the exact per-person poses each frame fed to the tracker, so a resumed run
replays the tracker over the frames already done (no inference) and continues from the first
missing frame; its results are identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from posecore.config import to_dict
from posecore.draw import DrawOptions, Trails, draw_tracks
from posecore.errors import OccluposeError, OutputError
from posecore.io.records import poses_from_record
from posecore.io.result_writers import CsvWriter, JsonlWriter, read_jsonl, write_coco_results
from posecore.io.sources import FrameSource, ImageFolderSource, open_source
from posecore.io.threads import BackgroundSink
from posecore.io.video_writer import VideoWriter
from posecore.pipeline import Pipeline, PipelineConfig
from posecore.skeleton import get_skeleton
from posecore.types import FrameResult

log = logging.getLogger("occlupose")

RUN_FILE_VERSION = 1


class Interrupted(OccluposeError):
    """The run was stopped by a signal; the outputs written so far are valid."""


@dataclass
class ProcessOptions:
    source: str
    outdir: Path
    config: PipelineConfig = field(default_factory=PipelineConfig)
    video: bool = True
    resume: bool = False
    max_frames: int | None = None
    progress: bool = True
    draw: DrawOptions = field(default_factory=DrawOptions)


@dataclass
class ProcessSummary:
    frames: int
    resumed_from: int
    seconds: float
    track_ids: int
    outputs: dict[str, Path]

    @property
    def fps(self) -> float:
        done = self.frames - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def _stem(source: FrameSource, spec: str) -> str:
    name = Path(spec).stem if not spec.isdigit() and "://" not in spec else source.name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return safe or "output"


def _prepare_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".occlupose-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to output folder {outdir}: {e.strerror or e}") from None


def _settings(opts: ProcessOptions, source: FrameSource) -> dict:
    cfg = to_dict(opts.config)
    cfg["detector"].pop("device", None)  # the device does not change results enough to matter here
    return {"version": RUN_FILE_VERSION, "source": str(opts.source), "source_name": source.name, "config": cfg}


def _frames_done(jsonl: Path) -> list[dict]:
    """The complete, contiguous records of an earlier run (frame 0, 1, 2, ...)."""
    done = []
    if jsonl.exists():
        for i, rec in enumerate(read_jsonl(jsonl)):
            if rec.get("frame") != i:
                break
            done.append(rec)
    return done


def _check_resume(run_file: Path, settings: dict) -> None:
    try:
        old = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise OccluposeError(f"cannot resume: {run_file} is missing or damaged; run again without --resume") from None
    if old.get("source") != settings["source"]:
        raise OccluposeError(f"cannot resume: the earlier run in this folder processed {old.get('source')!r}")
    if old.get("config") != settings["config"]:
        diff = _first_difference(old.get("config"), settings["config"])
        raise OccluposeError(f"cannot resume: setting {diff} differs from the earlier run; run again without --resume")


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


def run_process(opts: ProcessOptions, pipeline: Pipeline | None = None) -> ProcessSummary:
    """Run the job; raises OccluposeError (Interrupted on a signal) with the outputs left valid."""
    source = open_source(opts.source)
    outdir = Path(opts.outdir)
    _prepare_outdir(outdir)
    stem = _stem(source, str(opts.source))
    paths = {
        "jsonl": outdir / f"{stem}.jsonl",
        "csv": outdir / f"{stem}.csv",
        "coco": outdir / f"{stem}.coco.json",
        "run": outdir / f"{stem}.run.json",
    }
    settings = _settings(opts, source)
    done: list[dict] = []
    if opts.resume and paths["run"].exists():
        _check_resume(paths["run"], settings)
        done = _frames_done(paths["jsonl"])
    elif opts.resume:
        log.warning("nothing to resume in %s; starting from the first frame", outdir)
    start = len(done)
    if pipeline is None:
        pipeline = Pipeline.from_config(opts.config)
    pipeline.reset()
    paths["run"].write_text(json.dumps(settings, indent=2), encoding="utf-8")
    paths["coco"].unlink(missing_ok=True)  # written only when the run completes

    skeleton = pipeline.skeleton
    num_joints = get_skeleton(skeleton).num_joints
    jsonl = JsonlWriter(paths["jsonl"], start_frame=start)
    csvw = CsvWriter(paths["csv"], skeleton, start_frame=start)
    is_images = isinstance(source, ImageFolderSource)
    trails = Trails(opts.draw.trail_length)
    video: list[VideoWriter] = []  # opened on the first frame, when the size is known
    if opts.video:
        if is_images:
            paths["annotated"] = outdir / f"{stem}_annotated"
            paths["annotated"].mkdir(exist_ok=True)
        else:
            paths["video"] = outdir / f"{stem}.mp4"

    def draw_and_write(result: FrameResult) -> None:
        trails.update(result.tracks, result.index)
        image = draw_tracks(result.image.copy(), result.tracks, skeleton, opts.draw, trails)
        if is_images:
            name = Path(result.source_name or f"{result.index:06d}.jpg")
            if not cv2.imwrite(str(paths["annotated"] / f"{name.stem}.jpg"), image):
                raise OutputError(f"cannot write {paths['annotated'] / name.name}")
            return
        if not video:
            h, w = image.shape[:2]
            video.append(VideoWriter(paths["video"], source.fps, w, h))
        video[0].write(image)

    sink = BackgroundSink(draw_and_write, depth=8, name="encode") if opts.video else None
    total = source.frame_count
    if opts.max_frames is not None:
        total = min(total, opts.max_frames) if total else opts.max_frames
    bar = _progress(total, opts.progress, stem)
    ids: set[int] = set()
    frames = 0
    t_start = time.perf_counter()
    completed = False
    try:
        for result in _results(pipeline, source, done, num_joints, opts.max_frames):
            if result.index >= start:
                jsonl.write(result)
                csvw.write(result)
            ids.update(t.track_id for t in result.tracks)
            if sink is not None:
                sink.put(result)
            frames = result.index + 1
            if bar is not None:
                bar.update(1)
        completed = True
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after {frames} frames; outputs in {outdir} are valid, "
                          f"continue with --resume") from None
    finally:
        if bar is not None:
            bar.close()
        try:
            if sink is not None:
                sink.close()
        finally:
            for v in video:
                v.close()
            jsonl.close()
            csvw.close()
    if completed:
        write_coco_results(paths["jsonl"], paths["coco"])
    if isinstance(source, ImageFolderSource) and source.skipped:
        log.warning("skipped %d unreadable image(s): %s", len(source.skipped), ", ".join(source.skipped[:5]))
    return ProcessSummary(frames, start, time.perf_counter() - t_start, len(ids), paths)


def _results(pipeline: Pipeline, source: FrameSource, done: list[dict], num_joints: int, max_frames: int | None):
    """Replayed results for the frames already done, then fresh ones."""
    frames = _limit(source, max_frames)
    start = len(done)
    if start:
        # Replay: the same frames with their recorded poses, so the tracker reaches the exact state
        # it had, and the video is drawn again; no inference.
        for frame in frames:
            yield pipeline.track(frame, poses_from_record(done[frame.index], num_joints))
            if frame.index + 1 >= start:
                break
    yield from pipeline.stream(frames)


def _limit(frames, max_frames: int | None):
    for f in frames:
        if max_frames is not None and f.index >= max_frames:
            return
        yield f


def _progress(total: int | None, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
