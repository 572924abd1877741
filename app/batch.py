"""Many sources in one ``occlupose process`` run: which sources, where each one's outputs go, the manifest,
and running them on this machine, one after another or several at once in separate processes.

A batch is several sources, a folder holding videos, or ``@list.txt`` (one source a line). Each source is
an ordinary single-source run (:func:`app.process.process_source`) into ``OUTDIR/<name>/``, so every
guarantee of that run (outputs valid after any stop, exact ``--resume``) holds per source. The manifest
``OUTDIR/batch.jsonl`` gets one line per source as it ends (done, failed with the one-line reason, skipped
because already done, interrupted); ``--resume`` reads it back. Ray (``app/ray_runner.py``) runs the same
:func:`run_job` as tasks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from posecore.errors import OccluposeError, OutputError, SourceError, one_line
from posecore.io.sources import IMAGE_EXTENSIONS, natural_key
from app.run.pipeline import auto_threads

log = logging.getLogger("occlupose")

MANIFEST = "batch.jsonl"
# What FFmpeg commonly holds; a folder with any of these is a batch of videos, else an image source.
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
                              ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"})
STOP_WAIT_S = 120.0  # how long an interrupted batch waits for running sources to close their files


@dataclass(frozen=True)
class BatchJob:
    """One source of a batch: a single-source run of ``source`` into ``outdir`` (``OUTDIR/<name>``).
    ``settings``: the user's settings as a nested mapping (as ``--config`` and ``--set`` give them)."""

    source: str
    name: str
    outdir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    video: bool = True
    max_frames: int | None = None
    stream_timeout_s: float = 10.0
    resume: bool = False
    progress: bool = False


@dataclass
class JobOutcome:
    """How one source ended; a manifest line. status: done, failed, skipped or interrupted."""

    source: str
    name: str
    status: str
    reason: str | None = None
    frames: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    tracks: int = 0
    outputs: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return asdict(self)


# -- sources ----------------------------------------------------------------------------------------


def _is_url(spec: str) -> bool:
    return "://" in spec


def _folder_videos(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise SourceError(f"cannot read folder {folder}: {e.strerror or e}") from None
    return sorted((p for p in entries if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()), key=natural_key)


def _has_images(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
    except OSError:
        return False


def _read_list(arg: str) -> list[str]:
    """The sources of ``@list.txt``: one a line; blank lines and lines starting with # are left out;
    relative paths are relative to the list file's folder."""
    path = Path(arg[1:])
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read source list {path}: {getattr(e, 'strerror', None) or e}") from None
    out = []
    missing = []
    for n, line in enumerate(lines, 1):
        spec = line.strip()
        if not spec or spec.startswith("#"):
            continue
        if not _is_url(spec) and not spec.isdigit():
            p = Path(spec).expanduser()
            p = p if p.is_absolute() else path.parent / p
            if not p.exists():
                missing.append(f"{p} (line {n})")
            spec = str(p)
        out.append(spec)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise SourceError(f"source list {path} names a missing file: {missing[0]}{more}")
    if not out:
        raise SourceError(f"source list {path} names no sources")
    return out


def is_batch(args: Sequence[str]) -> bool:
    """Several sources, a list file or a folder holding videos; one source otherwise (today's single run)."""
    if len(args) != 1:
        return True
    arg = str(args[0])
    if arg.startswith("@"):
        return True
    p = Path(arg)
    return not _is_url(arg) and p.is_dir() and bool(_folder_videos(p))


def expand_sources(args: Sequence[str]) -> list[str]:
    """Every source the arguments name, in order: list files read, folders of videos opened (a folder of
    images stays one source); raises SourceError for an empty folder, a missing file or list."""
    out: list[str] = []
    for raw in args:
        arg = str(raw)
        if arg.startswith("@"):
            out.extend(_read_list(arg))
            continue
        if _is_url(arg) or arg.isdigit():
            out.append(arg)
            continue
        p = Path(arg)
        if p.is_dir():
            videos = _folder_videos(p)
            if videos:
                out.extend(str(v) for v in videos)
            elif _has_images(p):
                out.append(arg)
            else:
                raise SourceError(f"no videos or images in folder: {p}")
        elif not p.exists():
            raise SourceError(f"no such file or directory: {p}")
        else:
            out.append(arg)
    return out


def source_name(spec: str) -> str:
    """A file-system-safe name for a source's output folder: the file or folder name without its
    extension; for a stream URL its last path part or host."""
    if _is_url(spec):
        parts = urlsplit(spec)
        name = Path(parts.path).stem or (parts.hostname or "stream")
    elif spec.isdigit():
        name = f"camera{spec}"
    else:
        name = Path(spec).stem if Path(spec).suffix else Path(spec).name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return safe or "source"


def unique_names(sources: Sequence[str]) -> list[str]:
    """One output folder name per source, in order; a name taken already gets -2, -3, ... (the same
    sources in the same order always get the same names, so ``--resume`` finds its folders)."""
    taken: set[str] = set()
    out = []
    for spec in sources:
        base = source_name(spec)
        name, k = base, 1
        while name.lower() in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name.lower())
        out.append(name)
    return out


def plan_jobs(sources: Sequence[str], outdir: Path, **job_fields) -> list[BatchJob]:
    return [BatchJob(source=s, name=n, outdir=outdir / n, **job_fields) for s, n in zip(sources, unique_names(sources))]


# -- manifest -----------------------------------------------------------------------------------------


class Manifest:
    """``OUTDIR/batch.jsonl``: one JSON line per source as it ends, appended and flushed at once (only the
    process that runs the batch writes it). The last line for a source is its state."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last record of each (source, name); a torn or damaged line is left out, and the lines
        after it still count (each line stands alone)."""
        last: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            raw_lines = self.path.read_bytes().splitlines() if self.path.exists() else []
        except OSError as e:
            raise OutputError(f"cannot read {self.path}: {e.strerror or e}") from None
        for raw in raw_lines:
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict) and isinstance(rec.get("source"), str) and isinstance(rec.get("name"), str):
                last[(rec["source"], rec["name"])] = rec
        return last

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def append(self, outcome: JobOutcome) -> None:
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **outcome.record()}) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                if f.tell() and not self._ends_with_newline():
                    f.write("\n")  # after a torn line, start a fresh one
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None


def _complete(rec: dict[str, Any]) -> bool:
    """A manifest record of a source that finished, whose outputs are all still there."""
    outputs = rec.get("outputs") or {}
    return rec.get("status") in ("done", "skipped") and bool(outputs) and \
        all(Path(p).exists() for p in outputs.values())


def split_done(jobs: Sequence[BatchJob], manifest: Manifest, resume: bool) -> tuple[list[BatchJob], list[JobOutcome]]:
    """The jobs to run (each resuming where its folder holds an earlier run) and, with ``resume``, the
    outcomes of the sources already complete, which are skipped."""
    if not resume:
        return list(jobs), []
    last = manifest.read()
    todo, skipped = [], []
    for job in jobs:
        rec = last.get((job.source, job.name))
        if rec is not None and _complete(rec):
            skipped.append(JobOutcome(job.source, job.name, "skipped", None, rec.get("frames", 0), 0, 0.0, 0.0,
                                      rec.get("tracks", 0), rec.get("outputs", {})))
            continue
        earlier = job.outdir.is_dir() and any(job.outdir.glob("*.run.json"))
        todo.append(replace(job, resume=earlier))
    return todo, skipped


# -- one source ---------------------------------------------------------------------------------------


_KINDS = (("coco", ".coco.json"), ("run", ".run.json"), ("jsonl", ".jsonl"), ("csv", ".csv"), ("video", ".mp4"))


def _existing_outputs(outdir: Path) -> dict[str, str]:
    """The result files a run left in ``outdir`` (after a failure, what there is of them)."""
    out: dict[str, str] = {}
    if outdir.is_dir():
        for p in sorted(outdir.iterdir()):
            kind = next((k for k, suffix in _KINDS if p.name.endswith(suffix)), None)
            if kind is not None:
                out.setdefault(kind, str(p))
    return out


def _frames_written(outputs: dict[str, str]) -> int:
    from app.run.resume import frames_done

    return frames_done(Path(outputs["jsonl"])) if "jsonl" in outputs else 0


def job_ended(job: BatchJob, status: str, reason: str, seconds: float = 0.0) -> JobOutcome:
    """The outcome of a source that did not complete, with what its folder holds of its outputs (they stay
    resumable)."""
    outputs = _existing_outputs(job.outdir)
    return JobOutcome(job.source, job.name, status, reason, _frames_written(outputs), 0, seconds, 0.0, 0, outputs)


def run_job(job: BatchJob) -> JobOutcome:
    """Run one source; never raises for the source's own failures: they are the outcome (so one failing
    source never stops the others). Interrupted (SIGINT/SIGTERM in this process): outputs valid, status
    interrupted."""
    from app.process import Interrupted, process_source

    t0 = time.perf_counter()

    def failed(status: str, reason: str) -> JobOutcome:
        return job_ended(job, status, reason, time.perf_counter() - t0)

    try:
        s = process_source(job.source, job.outdir, job.settings, video=job.video, resume=job.resume,
                           max_frames=job.max_frames, progress=job.progress, stream_timeout_s=job.stream_timeout_s)
    except (Interrupted, KeyboardInterrupt) as e:
        return failed("interrupted", one_line(e) if str(e) else "interrupted")
    except OccluposeError as e:
        return failed("failed", one_line(e))
    except MemoryError:
        return failed("failed", "out of memory")
    except Exception as e:  # a bug in one source's run still leaves the others to finish
        return failed("failed", f"internal error: {type(e).__name__}: {one_line(e)}")
    outputs = {k: str(p) for k, p in s.outputs.items() if p.exists()}
    return JobOutcome(job.source, job.name, "done", None, s.frames, s.resumed_from, round(s.seconds, 3),
                      round(s.fps, 3), s.track_ids, outputs)


def with_threads(jobs: Iterable[BatchJob], cores_per_job: int) -> list[BatchJob]:
    """Each job's torch threads for its share of the cores, unless the user set ``threads``."""
    out = []
    for job in jobs:
        if "threads" in job.settings:
            out.append(job)
            continue
        workers = job.settings.get("workers") or 2
        out.append(replace(job, settings={**job.settings, "threads": auto_threads(workers, cores_per_job)}))
    return out


# -- the batch ------------------------------------------------------------------------------------------

Runner = Callable[[Sequence[BatchJob], Callable[[JobOutcome], None]], bool]


def _describe(o: JobOutcome) -> str:
    if o.status == "done":
        resumed = f", resumed at frame {o.resumed_from}" if o.resumed_from else ""
        return (f"{o.frames} frames in {o.seconds:.1f} s ({o.fps:.1f} frames/s{resumed}), {o.tracks} track IDs")
    if o.status == "skipped":
        return f"already done ({o.frames} frames)"
    return o.reason or o.status


def process_batch(args: Sequence[str], outdir: Path, runner: Runner | None = None, *, jobs: int = 1,
                  resume: bool = False, echo: Callable[[str], None] = print, **job_fields) -> list[JobOutcome]:
    """Run every source ``args`` names into ``outdir/<name>/``, writing the manifest as sources end.
    ``runner`` runs the jobs (default: this machine, ``jobs`` at once); ``job_fields`` are those of
    :class:`BatchJob` shared by all (settings, video, max_frames, stream_timeout_s, progress).
    Raises OccluposeError naming the failed sources when any failed, Interrupted when stopped."""
    from app.process import Interrupted

    sources = expand_sources(args)
    outdir = Path(outdir)
    manifest = Manifest(outdir / MANIFEST)
    all_jobs = plan_jobs(sources, outdir, **job_fields)
    todo, skipped = split_done(all_jobs, manifest, resume)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        if not resume:
            manifest.path.unlink(missing_ok=True)  # a new batch: its own manifest
    except OSError as e:
        raise OutputError(f"cannot write to output folder {outdir}: {e.strerror or e}") from None
    outcomes: list[JobOutcome] = []
    t0 = time.perf_counter()

    def on_done(o: JobOutcome) -> None:
        outcomes.append(o)
        manifest.append(o)
        echo(f"[{len(outcomes)}/{len(all_jobs)}] {o.status:11s} {o.name}: {_describe(o)}")

    for o in skipped:
        on_done(o)
    if runner is None:
        from app.local_runner import local_runner

        runner = local_runner(jobs)
    try:
        completed = runner(todo, on_done)
    except KeyboardInterrupt:  # a Ctrl-C the runner did not handle (as it closed its workers, or a second one)
        completed = len(outcomes) == len(all_jobs)  # every source had ended by then: the batch is complete
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "interrupted")}
    echo(f"batch: {', '.join(f'{n} {s}' for s, n in counts.items() if n)} of {len(all_jobs)} sources in "
         f"{time.perf_counter() - t0:.1f} s; manifest {manifest.path}")
    failed = [o.name for o in outcomes if o.status == "failed"]
    if not completed or counts["interrupted"]:
        names = ", ".join(o.name for o in outcomes if o.status == "interrupted")
        raise Interrupted(f"batch interrupted ({names or 'before the next source'}); outputs so far are valid, "
                          f"continue with --resume")
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise OccluposeError(f"{len(failed)} of {len(all_jobs)} sources failed: {shown}; reasons in {manifest.path}")
    return outcomes
