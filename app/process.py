"""The batch job behind ``occlupose process``: run the pipeline over a source and write every output
as frames complete.

Outputs in OUTDIR, named after the source (STEM): STEM.jsonl (a record per frame), STEM.csv (a row per
tracked joint), STEM.mp4 (annotated video; for image folders, annotated images in STEM_annotated/),
STEM.coco.json (COCO keypoint results with track_id, written when the run completes) and
STEM.run.json (the settings, used by --resume).

Resume: the JSONL keeps the exact per-person poses each frame fed to the tracker, so a resumed run
replays the tracker over the frames already done (no inference) and continues from the first
missing frame; its results are identical to an uninterrupted run.

Faults: a frame's results go to every output or to none (SIGINT and SIGTERM wait for the frame being
written), so after an interrupt, a full disk or a source that fails, every file holds the same complete
frames; the COCO file is written whole or not at all. Memory stays flat over any length of run: queues
are bounded (in bytes for big frames), resume and the COCO file stream from the JSONL.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import cv2

from posecore.config import to_dict
from posecore.draw import DrawOptions, Trails, draw_tracks
from posecore.errors import OccluposeError, OutputError, SourceError
from posecore.io.records import poses_from_record
from posecore.io.result_writers import CsvWriter, JsonlWriter, read_jsonl, write_coco_results, write_text_atomic
from posecore.io.sources import Frame, FrameSource, ImageFolderSource, VideoFileSource, open_source
from posecore.io.threads import BackgroundSink
from posecore.io.video_writer import VideoWriter
from posecore.pipeline import Pipeline, PipelineConfig
from posecore.skeleton import get_skeleton
from posecore.types import FrameResult

log = logging.getLogger("occlupose")

RUN_FILE_VERSION = 1
SINK_BYTES = 256 * 2**20  # frames waiting to be drawn and encoded hold at most about this much
SINK_DEPTH = 8


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

    @property
    def fps(self) -> float:
        done = self.frames - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def _stem(source: FrameSource, spec: str) -> str:
    if "://" in spec:  # a stream: its last path part (rtsp://cam/stream1 -> stream1), else its host
        parts = urlsplit(spec)
        name = Path(parts.path).stem or (parts.hostname or "stream")
    else:
        name = Path(spec).stem if not spec.isdigit() else source.name
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


def _frames_done(jsonl: Path) -> int:
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


def _check_resume(run_file: Path, settings: dict) -> None:
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


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


class _SignalGuard:
    """Makes writing one frame's results atomic with respect to SIGINT and SIGTERM.

    While installed (main thread only), both signals raise KeyboardInterrupt as usual, except inside
    ``deferred()``, where they are held until the block ends. So a frame reaches every output or none.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._old: dict[int, object] = {}
        self._deferring = False
        self._pending: int | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread receives signals; embedded callers keep their own handling
        for sig in self.SIGNALS:
            self._old[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    def _handle(self, signum, frame) -> None:
        if self._deferring:
            self._pending = signum
            return
        self._deliver(signum, frame)

    def _deliver(self, signum, frame) -> None:
        old = self._old.get(signum)
        if old == signal.SIG_IGN:
            return
        if callable(old) and old is not signal.default_int_handler:
            old(signum, frame)  # e.g. the command line's SIGTERM handler, which raises KeyboardInterrupt
        raise KeyboardInterrupt  # SIGINT as Python does it; SIGTERM unwinds the same way so files are closed

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            pending, self._pending = self._pending, None
            if pending is not None:
                self._deliver(pending, None)


def run_process(opts: ProcessOptions, pipeline: Pipeline | None = None,
                source: FrameSource | None = None) -> ProcessSummary:
    """Run the job; raises OccluposeError (Interrupted on a signal) with the outputs left valid.

    ``source`` replaces opening ``opts.source`` (which then only names the run), for sources made in code.
    """
    if source is None:
        source = open_source(opts.source, timeout_s=opts.stream_timeout_s)
    try:
        return _run(opts, pipeline, source)
    finally:
        source.close()


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
    start = 0
    if opts.resume and source.is_live:
        raise OccluposeError(f"cannot resume: {source.name} is live (camera or stream); --resume needs a file or folder")
    if opts.resume and paths["run"].exists():
        _check_resume(paths["run"], settings)
        start = _frames_done(paths["jsonl"])
    elif opts.resume:
        log.warning("nothing to resume in %s; starting from the first frame", outdir)
    if pipeline is None:
        pipeline = Pipeline.from_config(config)
    pipeline.reset()
    # The last frames written were smoothed with the frames after them only if the earlier run went on
    # past them; redo them, so that a resumed run gives exactly the results of one run straight through.
    start = max(0, start - pipeline.delay)
    write_text_atomic(paths["run"], json.dumps(settings, indent=2))
    try:
        paths["coco"].unlink(missing_ok=True)  # written only when the run completes
    except OSError as e:
        raise OutputError(f"cannot write {paths['coco']}: {e.strerror or e}") from None

    skeleton = pipeline.skeleton
    num_joints = get_skeleton(skeleton).num_joints
    jsonl = JsonlWriter(paths["jsonl"], start_frame=start)
    try:
        csvw = CsvWriter(paths["csv"], skeleton, start_frame=start)
    except BaseException:
        jsonl.close()
        raise
    is_images = isinstance(source, ImageFolderSource)
    trails = Trails(opts.draw.trail_length)
    video: list[VideoWriter] = []  # opened on the first frame, when the size is known
    if opts.video:
        if is_images:
            paths["annotated"] = outdir / f"{stem}_annotated"
            try:
                paths["annotated"].mkdir(exist_ok=True)
            except OSError as e:
                jsonl.close()
                csvw.close()
                raise OutputError(f"cannot write {paths['annotated']}: {e.strerror or e}") from None
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

    sink: list[BackgroundSink] = []  # made on the first frame: its depth depends on the frame size
    total = source.frame_count
    if opts.max_frames is not None:
        total = min(total, opts.max_frames) if total else opts.max_frames
    bar = _progress(total, opts.progress, stem)
    ids: set[int] = set()
    frames = 0
    t_start = time.perf_counter()
    completed = False
    stop: OccluposeError | None = None  # why the run ended early, raised once the outputs are closed
    guard = _SignalGuard()
    guard.install()
    results = _results(pipeline, source, paths["jsonl"], start, num_joints, opts.max_frames)

    def commit(result: FrameResult) -> None:
        nonlocal frames
        if opts.video and not sink:
            depth = max(2, min(SINK_DEPTH, SINK_BYTES // max(1, result.image.nbytes)))
            sink.append(BackgroundSink(draw_and_write, depth=depth, name="encode"))
        if sink:
            sink[0].reserve()  # may wait for the encoder, outside the deferred section
        with guard.deferred():
            if result.index >= start:
                # The JSONL line last: it is what --resume trusts, so a frame whose CSV rows failed
                # (disk full) is not in it, and resume redoes that frame in every file.
                csvw.write(result)
                jsonl.write(result)
            frames = result.index + 1  # committed: in the JSONL
            if sink:
                sink[0].put(result)  # never raises after reserve(); a drawing error shows at the next one
        ids.update(t.track_id for t in result.tracks)
        if bar is not None:
            bar.update(1)

    def commit_held() -> None:
        """The results the smoother and the stitcher still hold, written as if the frames ended here: nothing computed
        is lost (a resume redoes them with the frames after)."""
        try:
            for result in pipeline.flush():
                commit(result)
        except OutputError as e:  # the run is ending anyway, for the reason being reported
            log.warning("%s", e)

    try:
        for result in results:
            commit(result)
        completed = True
    except KeyboardInterrupt:
        commit_held()
        hint = "" if source.is_live else ", continue with --resume"
        stop = Interrupted(f"interrupted after {frames} frames; outputs in {outdir} are valid{hint}")
    except SourceError as e:
        commit_held()
        stop = SourceError(f"{e}; the {frames} frames before are saved in {outdir}") if frames else e
    except OutputError as e:
        stop = OutputError(f"{e}; the first {frames} frames are saved intact, continue with --resume") if frames else e
    finally:
        guard.uninstall()
        # Stop decoding ahead before anything closes: the source is closed after this, never under a read.
        _close_all([results.close], quiet=True)
        if bar is not None:
            bar.close()
        # The sink first: it draws and encodes the frames still queued, then the video is finalised.
        _close_all([lambda: sink and sink[0].close(), lambda: video and video[0].close(), jsonl.close, csvw.close],
                   quiet=stop is not None)
    if completed or (source.is_live and not isinstance(stop, OutputError)):
        # A live source has no resume: what it delivered is the whole run, so it gets its COCO file too.
        write_coco_results(paths["jsonl"], paths["coco"])
    if stop is not None:
        raise stop from None
    skipped = list(getattr(source, "skipped", []))
    if skipped:
        reasons = getattr(source, "skip_reasons", {})
        named = ", ".join(f"{n} ({reasons[n]})" if n in reasons else n for n in skipped[:5])
        log.warning("skipped %d unreadable image(s): %s%s", len(skipped), named, " ..." if len(skipped) > 5 else "")
    damage = getattr(source, "damage", None)
    if completed and damage:
        # Every output is complete for the readable part; the exit status still says the input was bad.
        raise SourceError(f"{damage}; results for the {frames} readable frames are in {outdir}")
    return ProcessSummary(frames, start, time.perf_counter() - t_start, len(ids), paths, skipped)


def _close_all(closers, quiet: bool = False) -> None:
    """Run every closer; raise the first failure afterwards, unless the run already failed (``quiet``, or an
    exception on its way): then that is the news, and a follow-up such as a second full-disk error is dropped."""
    in_flight = quiet or sys.exc_info()[1] is not None
    first: BaseException | None = None
    for close in closers:
        try:
            close()
        except Exception as e:
            first = first or e
    if first is not None and not in_flight:
        raise first


def _results(pipeline: Pipeline, source: FrameSource, jsonl: Path, start: int, num_joints: int,
             max_frames: int | None) -> Iterator[FrameResult]:
    """Replayed results for the frames already done, then fresh ones."""
    frames = _limit(source, max_frames)
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


def _limit(frames, max_frames: int | None) -> Iterator[Frame]:
    for f in frames:
        if max_frames is not None and f.index >= max_frames:
            return
        yield f


def _progress(total: int | None, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
