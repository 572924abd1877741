"""The batch job behind ``occlupose process``: run the pipeline over a source and write every output
as frames complete, with the run layer (``app.run``: pipeline, sinks, run loop, resume).

Outputs in OUTDIR, named after the source (STEM): STEM.jsonl (a record per frame), STEM.csv (a row per
tracked joint), STEM.mp4 (annotated video; for image folders, annotated images in STEM_annotated/),
STEM.coco.json (COCO keypoint results with track_id, written when the run completes) and
STEM.run.json (the settings, used by --resume; see ``app.run.resume``; with ``detector.imgsz: auto``, also
the input size chosen for the source and why, under ``auto_imgsz``).

Faults: a frame's results go to every output or to none (SIGINT and SIGTERM wait for the frame being
written), so after an interrupt, a full disk or a source that fails, every file holds the same complete
frames; the COCO file is written whole or not at all. Memory stays flat over any length of run: queues
are bounded (in bytes for big frames), resume and the COCO file stream from the JSONL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.run.autosize import pipeline_for_source
from app.run.loop import Outcome, close_all, run_loop
from app.run.names import safe_stem, source_stem
from app.run.pipeline import Pipeline, PipelineConfig
from app.run.progress import progress_bar
from app.run.resume import RUN_FILE_VERSION, check_resume, frames_done, replayed_then_fresh
from app.run.signals import SignalGuard
from app.run.sinks import AnnotatedSink, CocoSink, CsvSink, JsonlSink, Sink
from posecore.autosize import SizeChoice
from posecore.config import dotted_keys, from_dict, to_dict
from posecore.draw import DrawOptions
from posecore.errors import OccluposeError, OutputError, SourceError
from posecore.io.result_writers import write_text_atomic
from posecore.io.sources import Frame, FrameSource, ImageFolderSource, VideoFileSource, open_source
from posecore.skeleton import get_skeleton

log = logging.getLogger("occlupose")


class Interrupted(OccluposeError):
    """The run was stopped by a signal; the outputs written so far are valid."""


@dataclass
class ProcessOptions:
    source: str
    outdir: Path
    config: PipelineConfig = field(default_factory=PipelineConfig)
    # The settings of ``config`` that the user chose, as dotted keys ("stills", "tracker.max_lost"), as the
    # command line passes them. Where given, a setting not among them takes the default that suits the
    # source (see ``source_config``); None: ``config`` is used as it is.
    given: frozenset[str] | None = None
    video: bool = True
    resume: bool = False
    max_frames: int | None = None
    progress: bool = True
    draw: DrawOptions = field(default_factory=DrawOptions)
    stream_timeout_s: float = 10.0  # a stream URL that sends nothing this long is an error


@dataclass
class ProcessSummary:
    frames: int
    resumed_from: int
    seconds: float
    track_ids: int
    outputs: dict[str, Path]
    skipped: list[str] = field(default_factory=list)  # unreadable images of a folder source
    imgsz: SizeChoice | None = None  # the input size chosen for the source (detector.imgsz: auto)

    @property
    def fps(self) -> float:
        done = self.frames - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def _stem(source: FrameSource, spec: str) -> str:
    """A camera index names no file: the camera's name does."""
    return safe_stem(source.name) if spec.isdigit() else source_stem(spec)


def _prepare_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".occlupose-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to output folder {outdir}: {e.strerror or e}") from None


def source_config(opts: ProcessOptions, source: FrameSource) -> PipelineConfig:
    """``opts.config`` with the defaults that depend on the source, for the settings the user left alone:
    an image folder or image file holds unrelated photos, so each is tracked alone (``stills``). Tracked
    like video frames, photos lose the people the tracker has not confirmed yet and get poses smoothed
    across images that have nothing to do with each other."""
    if opts.given is None or "stills" in opts.given or not isinstance(source, ImageFolderSource):
        return opts.config
    return replace(opts.config, stills=True)


def _settings(opts: ProcessOptions, config: PipelineConfig, source: FrameSource) -> dict:
    cfg = to_dict(config)
    # Settings of speed, not of results, may change between a run and its resume.
    cfg["detector"].pop("device", None)
    for key in ("prefetch", "workers", "threads"):
        cfg.pop(key, None)
    return {"version": RUN_FILE_VERSION, "source": str(opts.source), "source_name": source.name,
            "source_size": _source_size(source), "config": cfg}


def _source_size(source: FrameSource) -> int | None:
    """Bytes of a video file, images of a folder: a resume over a changed source would not be exact."""
    if isinstance(source, VideoFileSource):
        try:
            return source.path.stat().st_size
        except OSError:
            return None
    if isinstance(source, ImageFolderSource):
        return len(source.files)
    return None


def run_process(opts: ProcessOptions, pipeline: Pipeline | None = None,
                source: FrameSource | None = None) -> ProcessSummary:
    """Run the job over one source; raises OccluposeError (Interrupted on a signal) with the outputs left valid.

    ``pipeline`` replaces building one from the settings; ``source`` replaces opening ``opts.source``
    (which then only names the run), for sources made in code.
    """
    if source is None:
        source = open_source(opts.source, timeout_s=opts.stream_timeout_s)
    try:
        return _run(opts, pipeline, source)
    finally:
        source.close()


def process_source(source: str, outdir: str | Path, settings: Mapping[str, Any] | None = None, *,
                   video: bool = True, resume: bool = False, max_frames: int | None = None, progress: bool = True,
                   stream_timeout_s: float = 10.0) -> ProcessSummary:
    """One source into ``outdir``, with the settings the user chose as a nested mapping (what ``--config``
    and ``--set`` give); the one entry point of a single-source run, for the command line and batches."""
    settings = dict(settings or {})
    opts = ProcessOptions(source=str(source), outdir=Path(outdir), config=from_dict(PipelineConfig, settings),
                          given=dotted_keys(settings), video=video, resume=resume, max_frames=max_frames,
                          progress=progress, stream_timeout_s=stream_timeout_s)
    return run_process(opts)


def _run(opts: ProcessOptions, pipeline: Pipeline | None, source: FrameSource) -> ProcessSummary:
    outdir = Path(opts.outdir)
    _prepare_outdir(outdir)
    stem = _stem(source, str(opts.source))
    paths = {
        "jsonl": outdir / f"{stem}.jsonl",
        "csv": outdir / f"{stem}.csv",
        "coco": outdir / f"{stem}.coco.json",
        "run": outdir / f"{stem}.run.json",
    }
    config = source_config(opts, source)
    settings = _settings(opts, config, source)
    start, earlier = _resume_point(opts, source, paths, settings)
    frames = limit_frames(source, opts.max_frames)
    choice = None
    if pipeline is None:
        recorded = SizeChoice.from_record((earlier or {}).get("auto_imgsz"))
        pipeline, frames, choice = pipeline_for_source(config, frames, recorded)
    if choice is not None:
        settings["auto_imgsz"] = choice.as_record()
    pipeline.reset()
    # The last frames written were smoothed with the frames after them only if the earlier run went on
    # past them; redo them, so that a resumed run gives exactly the results of one run straight through.
    start = max(0, start - pipeline.delay)
    write_text_atomic(paths["run"], json.dumps(settings, indent=2))
    sinks = _open_sinks(opts, source, pipeline.skeleton, paths, stem, start)

    total = source.frame_count
    if opts.max_frames is not None:
        total = min(total, opts.max_frames) if total else opts.max_frames
    t_start = time.perf_counter()
    num_joints = get_skeleton(pipeline.skeleton).num_joints
    results = replayed_then_fresh(pipeline, frames, paths["jsonl"], start, num_joints)
    guard = SignalGuard()
    with pipeline.atomic_steps(guard.deferred):
        outcome = run_loop(results, sinks, pipeline.flush, progress_bar(total, stem, opts.progress), source.is_live,
                           guard)
    _raise_stop(outcome, source, outdir)
    skipped = list(source.skipped)
    if skipped:
        reasons = source.skip_reasons
        named = ", ".join(f"{n} ({reasons[n]})" if n in reasons else n for n in skipped[:5])
        log.warning("skipped %d unreadable image(s): %s%s", len(skipped), named, " ..." if len(skipped) > 5 else "")
    if source.damage:
        # Every output is complete for the readable part; the exit status still says the input was bad.
        raise SourceError(f"{source.damage}; results for the {outcome.frames} readable frames are in {outdir}")
    return ProcessSummary(outcome.frames, start, time.perf_counter() - t_start, len(outcome.track_ids), paths, skipped,
                          choice)


def _resume_point(opts: ProcessOptions, source: FrameSource, paths: dict[str, Path],
                  settings: dict) -> tuple[int, dict | None]:
    """The first frame an earlier run in the folder did not finish (0 without ``--resume``), and that run's
    record (None without ``--resume``)."""
    if opts.resume and source.is_live:
        raise OccluposeError(f"cannot resume: {source.name} is live (camera or stream); --resume needs a file or folder")
    if opts.resume and paths["run"].exists():
        earlier = check_resume(paths["run"], settings)
        return frames_done(paths["jsonl"]), earlier
    if opts.resume:
        log.warning("nothing to resume in %s; starting from the first frame", paths["run"].parent)
    return 0, None


def _open_sinks(opts: ProcessOptions, source: FrameSource, skeleton: str, paths: dict[str, Path], stem: str,
                start: int) -> list[Sink]:
    """The outputs, in the order each frame is written: the JSONL after the CSV (it is what --resume trusts,
    so a frame whose CSV rows failed is not in it, and resume redoes that frame in every file), the
    annotated video after both, and the COCO file, made from the JSONL, last."""
    coco = CocoSink(paths["jsonl"], paths["coco"])
    sinks: list[Sink] = []
    try:
        jsonl = JsonlSink(paths["jsonl"], start_frame=start)
        sinks.append(jsonl)
        sinks.insert(0, CsvSink(paths["csv"], skeleton, start_frame=start))
        if opts.video and isinstance(source, ImageFolderSource):
            paths["annotated"] = outdir_images = paths["jsonl"].parent / f"{stem}_annotated"
            sinks.append(AnnotatedSink.images(outdir_images, skeleton, opts.draw))
        elif opts.video:
            paths["video"] = paths["jsonl"].parent / f"{stem}.mp4"
            sinks.append(AnnotatedSink.video(paths["video"], source.fps, skeleton, opts.draw))
    except BaseException:
        close_all([s.close for s in sinks], quiet=True)
        raise
    return sinks + [coco]


def _raise_stop(outcome: Outcome, source: FrameSource, outdir: Path) -> None:
    """The reason a run ended early, as one line that says what was saved."""
    stop, frames = outcome.stopped_by, outcome.frames
    if stop is None:
        return
    if isinstance(stop, KeyboardInterrupt):
        hint = "" if source.is_live else ", continue with --resume"
        raise Interrupted(f"interrupted after {frames} frames; outputs in {outdir} are valid{hint}") from None
    if isinstance(stop, SourceError):
        raise (SourceError(f"{stop}; the {frames} frames before are saved in {outdir}") if frames else stop) from None
    raise (OutputError(f"{stop}; the first {frames} frames are saved intact, continue with --resume")
           if frames else stop) from None


def limit_frames(frames, max_frames: int | None) -> Iterator[Frame]:
    for f in frames:
        if max_frames is not None and f.index >= max_frames:
            return
        yield f
