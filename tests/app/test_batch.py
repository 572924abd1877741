"""Batches: ``occlupose process`` over several sources, locally with --jobs and on a real local Ray
instance. Every good source's JSONL equals a single-source run's; a damaged one is failed in the manifest
and the exit status is 1; --resume after SIGINT mid-batch finishes with identical outputs; bad input
is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.batch import MANIFEST, BatchJob, JobOutcome, Manifest, expand_sources, is_batch, unique_names
from app.run.pipeline import auto_threads
from posecore.errors import OccluposeError, SourceError
from posecore.io.result_writers import read_jsonl
from tests.conftest import ROOT, run_cli
from tests.conftest import shared_path

FRAMES = 4
LONG = 40  # frames of the shipped clip (it has 72): long enough that a stop lands while it runs
IMGSZ = 320
GOOD = ("hug", "mmtracking_demo")  # mmtracking_demo has 8 frames


def _settings_args(*extra: str, frames: int = FRAMES) -> list[str]:
    return ["-q", "--no-video", "--imgsz", str(IMGSZ), "--max-frames", str(frames), *extra]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, demo_clip) -> Path:
    """The shipped clip, a shared clip and a damaged video (the first 30 kB of the clip)."""
    clip = shared_path("videos", "mmtracking_demo.mp4")
    d = tmp_path_factory.mktemp("videos")
    shutil.copy(demo_clip, d / "hug.mp4")
    shutil.copy(clip, d / "mmtracking_demo.mp4")
    (d / "damaged.mp4").write_bytes(Path(demo_clip).read_bytes()[:30_000])
    return d


def _single_runs(videos: Path, frames: int, tmp_path_factory) -> dict[str, Path]:
    """Single-source runs of the good videos with the batch's settings: name -> JSONL."""
    from app.process import process_source

    out = {}
    for name in GOOD:
        folder = tmp_path_factory.mktemp(f"ref_{name}_{frames}")
        process_source(str(videos / f"{name}.mp4"), folder, {"detector": {"imgsz": IMGSZ}}, video=False,
                       max_frames=frames, progress=False)
        out[name] = folder / f"{name}.jsonl"
    return out


@pytest.fixture(scope="module")
def references(videos, tmp_path_factory) -> dict[str, Path]:
    return _single_runs(videos, FRAMES, tmp_path_factory)


@pytest.fixture(scope="module")
def long_references(videos, tmp_path_factory) -> dict[str, Path]:
    return _single_runs(videos, LONG, tmp_path_factory)


def _manifest(out: Path) -> dict[str, dict]:
    return {name: rec for (_, name), rec in Manifest(out / MANIFEST).read().items()}


def _assert_batch_result(r: subprocess.CompletedProcess, out: Path, references: dict[str, Path],
                         ended: tuple[str, ...] = ("done",)) -> None:
    """The batch's exit, error line and manifest; every good source ``ended`` so, equal to its single run."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("occlupose: error: 1 of 3 sources failed: damaged"), r.stderr
    manifest = _manifest(out)
    assert manifest["damaged"]["status"] == "failed" and manifest["damaged"]["reason"]
    for name, ref in references.items():
        expected = list(read_jsonl(ref))
        assert manifest[name]["status"] in ended, manifest[name]
        assert manifest[name]["frames"] == len(expected)
        assert list(read_jsonl(out / name / f"{name}.jsonl")) == expected
        assert (out / name / f"{name}.coco.json").exists()


# -- sources and names (no models) -------------------------------------------------------------------------


def test_a_folder_of_videos_is_a_batch_and_a_folder_of_images_one_source(tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for n in ("b10.mp4", "b9.MOV", "notes.txt"):
        (vids / n).write_bytes(b"x")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a.jpg").write_bytes(b"x")
    assert is_batch([str(vids)]) and not is_batch([str(imgs)]) and not is_batch([str(vids / "b9.MOV")])
    assert expand_sources([str(vids), str(imgs)]) == [str(vids / "b9.MOV"), str(vids / "b10.mp4"), str(imgs)]


def test_a_list_file_reads_paths_relative_to_itself(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"x")
    lst = tmp_path / "list.txt"
    lst.write_text("# clips\nsub/a.mp4\n\nrtsp://cam/stream1\n")
    assert expand_sources([f"@{lst}"]) == [str(tmp_path / "sub" / "a.mp4"), "rtsp://cam/stream1"]


def test_names_are_unique_and_stable():
    sources = ["/x/clip.mp4", "/y/clip.mp4", "/z/Clip.avi", "rtsp://cam/stream1", "/w/clip-2.mp4"]
    names = unique_names(sources)
    assert names == ["clip", "clip-2", "Clip-3", "stream1", "clip-2-2"]
    assert unique_names(sources) == names


def test_missing_files_in_a_list_and_an_empty_folder_are_errors(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("gone.mp4\nalso_gone.mp4\n")
    with pytest.raises(SourceError, match="missing file: .*gone.mp4 \\(line 1\\) and 1 more"):
        expand_sources([f"@{lst}"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no videos or images in folder"):
        expand_sources([str(tmp_path / "empty")])


def _ctrl_c_after(count: int):
    """A batch runner that records the first ``count`` sources as done, then gets a Ctrl-C."""

    def run(jobs, on_done) -> bool:
        for job in jobs[:count]:
            on_done(JobOutcome(job.source, job.name, "done", None, 1))
        raise KeyboardInterrupt

    return run


def test_a_ctrl_c_the_runner_lets_through_is_an_interrupt_unless_every_source_had_ended(tmp_path):
    from app.batch import process_batch
    from app.process import Interrupted

    clips = [tmp_path / f"{n}.mp4" for n in ("a", "b")]
    for c in clips:
        c.write_bytes(b"x")
    try:  # a KeyboardInterrupt that got out would end the whole test session
        with pytest.raises(Interrupted, match="continue with --resume"):
            process_batch(clips, tmp_path / "o1", _ctrl_c_after(1), echo=lambda line: None)
        outcomes = process_batch(clips, tmp_path / "o2", _ctrl_c_after(2), echo=lambda line: None)
    except KeyboardInterrupt:
        pytest.fail("process_batch let the runner's KeyboardInterrupt through")
    assert [rec["name"] for rec in _manifest(tmp_path / "o1").values()] == ["a"]
    assert [o.status for o in outcomes] == ["done", "done"]


def test_jobs_beyond_the_sources_do_not_thin_out_the_cores(monkeypatch, tmp_path):
    """--jobs 8 with two sources on 16 cores: two workers of 8 cores each (torch threads for 8 cores)."""
    from app import local_runner

    seen = {}

    def fake_workers(jobs, workers, cores, on_done):
        seen.update(workers=workers, cores=cores, threads=[j.settings["threads"] for j in jobs])
        return True

    monkeypatch.setattr(local_runner, "available_cores", lambda: 16)
    monkeypatch.setattr(local_runner, "_run_workers", fake_workers)
    jobs = [BatchJob(str(tmp_path / f"{n}.mp4"), n, tmp_path / n) for n in ("a", "b")]
    assert local_runner.local_runner(8)(jobs, lambda outcome: None)
    assert seen == {"workers": 2, "cores": 8, "threads": [auto_threads(2, 8)] * 2}


# -- the command line: bad input ------------------------------------------------------------------------------


def _one_error_line(capfd, *args, needles: tuple[str, ...] = ()) -> str:
    """``occlupose ARGS`` in this process (no models are loaded before these errors): exit 1, one line."""
    from app import cli

    capfd.readouterr()
    code = cli.main([str(a) for a in args])
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("occlupose: error:"), err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_bad_batch_input_is_one_line(tmp_path, capfd):
    (tmp_path / "empty").mkdir()
    _one_error_line(capfd, "process", tmp_path / "empty", "-o", tmp_path / "o1", needles=("in folder:", "empty"))
    _one_error_line(capfd, "process", tmp_path / "empty", tmp_path / "empty", "-o", tmp_path / "o1",
                    needles=("no videos or images in folder",))
    lst = tmp_path / "list.txt"
    lst.write_text("missing_a.mp4\n")
    _one_error_line(capfd, "process", f"@{lst}", "-o", tmp_path / "o2", needles=("missing_a.mp4",))
    _one_error_line(capfd, "process", f"@{tmp_path / 'nolist.txt'}", "-o", tmp_path / "o3",
                    needles=("cannot read source list",))


def test_an_unreachable_ray_address_is_one_line(demo_clip, tmp_path, capfd):
    pytest.importorskip("ray")
    # A port nobody listens on: refused at once. (A silent address fails after the connect timeout.)
    _one_error_line(capfd, "process", demo_clip, demo_clip, "-o", tmp_path / "o", "--ray", "127.0.0.1:9",
                    needles=("cannot reach the Ray cluster at 127.0.0.1:9",))


def test_the_connect_check_gives_up_on_a_silent_address():
    from app.ray_runner import _check_reachable

    with pytest.raises(OccluposeError, match="cannot reach the Ray cluster at 192.0.2.1:6379"):
        _check_reachable("192.0.2.1:6379", 0.5)  # TEST-NET-1: never answers
    with pytest.raises(OccluposeError, match="expected auto or HOST:PORT"):
        _check_reachable("nonsense", 0.5)


def test_ray_missing_is_one_line(monkeypatch):
    from app import ray_runner

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when it is not installed
    with pytest.raises(OccluposeError, match=r"--ray needs Ray: pip install 'occlupose\[cluster\]'"):
        ray_runner.connect(None)


# -- the command line: whole batches ----------------------------------------------------------------------


@pytest.mark.slow
def test_jobs_2_equals_single_runs_and_reports_the_damaged_video(videos, references, tmp_path):
    out = tmp_path / "out"
    r = run_cli("process", videos, "-o", out, "--jobs", "2", *_settings_args())
    _assert_batch_result(r, out, references)
    assert "[3/3]" in r.stdout and "batch: 2 done, 1 failed of 3 sources" in r.stdout


def _start_batch(videos: Path, out: Path) -> subprocess.Popen:
    """``occlupose process VIDEOS --jobs 2`` with LONG frames per source, in the background."""
    cmd = [sys.executable, "-m", "app", "process", str(videos), "-o", str(out), "--jobs", "2",
           *_settings_args(frames=LONG)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A job started in the background (nohup make test &) inherits SIGINT ignored: give it a terminal's default.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _when_hug_is_running(proc: subprocess.Popen, out: Path) -> None:
    """Wait until the shipped clip's run has written a frame and not finished (LONG frames leave time)."""
    jsonl, deadline = out / "hug" / "hug.jsonl", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and sum(1 for _ in read_jsonl(jsonl)) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None and not (out / "hug" / "hug.coco.json").exists()


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()


def _resume_and_check(videos: Path, out: Path, references: dict[str, Path], before: dict[str, str]) -> None:
    r = run_cli("process", videos, "-o", out, "--jobs", "2", "--resume", *_settings_args(frames=LONG))
    _assert_batch_result(r, out, references, ended=("done", "skipped"))
    # Sources done before the stop are skipped, the others resumed.
    resumed = _manifest(out)
    for name in GOOD:
        assert resumed[name]["status"] == ("skipped" if before[name] == "done" else "done"), (before, resumed)


@pytest.mark.slow
def test_resume_after_sigint_mid_batch_finishes_with_identical_outputs(videos, long_references, tmp_path):
    out = tmp_path / "out"
    proc = _start_batch(videos, out)
    _when_hug_is_running(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    statuses = {name: rec["status"] for name, rec in _manifest(out).items()}
    assert statuses["hug"] == "interrupted", statuses
    _resume_and_check(videos, out, long_references, statuses)


def _worker_writing(batch_pid: int, path: Path) -> int:
    """The pid of the batch's worker process that has ``path`` open (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or f"\nPPid:\t{batch_pid}\n" not in (proc / "status").read_text():
                continue
            if any(os.readlink(fd) == str(path) for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:  # a process that ended meanwhile, or one not ours to read
            continue
    raise AssertionError(f"no worker of {batch_pid} has {path} open")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_killed_worker_fails_its_source_only_and_resume_finishes_it(videos, long_references, tmp_path):
    """A worker killed mid-source (as the kernel does when memory runs out): that source is failed, the
    others still run, the batch ends (no hang) and --resume finishes it identical to a run straight through."""
    out = tmp_path / "out"
    proc = _start_batch(videos, out)
    _when_hug_is_running(proc, out)
    os.kill(_worker_writing(proc.pid, out / "hug" / "hug.jsonl"), signal.SIGKILL)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    manifest = _manifest(out)
    assert manifest["hug"]["status"] == "failed" and "its process ended" in manifest["hug"]["reason"], manifest
    assert manifest["mmtracking_demo"]["status"] == "done"
    _resume_and_check(videos, out, long_references, {name: rec["status"] for name, rec in manifest.items()})


@pytest.mark.slow
def test_ray_batch_equals_single_runs_and_reports_the_damaged_video(videos, references, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    r = run_cli("process", videos, "-o", out, "--ray", "--jobs", "2", "--ray-cpus", "1", *_settings_args(),
                timeout=600)
    _assert_batch_result(r, out, references)
    records = [json.loads(ln) for ln in (out / MANIFEST).read_text().splitlines()]
    assert sorted(rec["name"] for rec in records) == ["damaged", *GOOD]
