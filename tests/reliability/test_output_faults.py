"""Outputs that stop being writable mid-run: a full disk (a simulated ENOSPC in-process, and a real
per-process file size limit in a subprocess, which makes every writer, FFmpeg's included, fail with
EFBIG) and an output folder that disappears or turns into a file. Each gives one line and a non-zero
exit, what was already written stays valid, and ``--resume`` finishes the job once the problem is gone.

Tests run as root, where chmod does not stop writes; a folder replaced by a file stops them for anyone.
"""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from app.process import ProcessOptions, run_process
from app.run.pipeline import Pipeline
from posecore.errors import OutputError
from posecore.io import result_writers
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import open_source
from posecore.io.video_writer import VideoWriter

from tests.reliability.conftest import ROOT, assert_one_line_error, assert_same_results, real_args, real_command
from tests.reliability.media import FullDisk, scripted_pipeline, write_video

N = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "walk.mp4", n=N, size=(96, 64))


@pytest.fixture(scope="module")
def clean_run(clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    run_process(ProcessOptions(str(clip), out, progress=False), scripted_pipeline())
    return out


def _fill_after(monkeypatch, name_suffix: str, room: int) -> None:
    real = result_writers._open_append

    def opener(path: Path):
        f = real(path)
        return FullDisk(f, room) if path.name.endswith(name_suffix) else f

    monkeypatch.setattr(result_writers, "_open_append", opener)


@pytest.mark.parametrize("victim, room", [(".jsonl", 20_000), (".csv", 30_000)])
def test_disk_full_on_a_result_file(cli_main, clip, clean_run, tmp_path, monkeypatch, victim, room):
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    _fill_after(monkeypatch, victim, room)
    out = tmp_path / "out"
    r = cli_main("process", clip, "-o", out, "-q")
    line = assert_one_line_error(r, "No space left on device", f"walk{victim}", "--resume")
    recs = list(read_jsonl(out / "walk.jsonl"))
    n = len(recs)
    assert 0 < n < N and f"first {n} frames" in line
    assert recs == list(read_jsonl(clean_run / "walk.jsonl"))[:n]  # what was written is what a clean run wrote
    clean_rows = (clean_run / "walk.csv").read_text().splitlines()
    rows = (out / "walk.csv").read_text().splitlines()
    whole = [row for row in rows if row in clean_rows]
    assert whole == clean_rows[: len(whole)] and len(rows) - len(whole) <= 1  # at most one torn row
    assert len(list(open_source(str(out / "walk.mp4")))) <= n + 1
    assert not (out / "walk.coco.json").exists()

    monkeypatch.undo()  # space again
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    r = cli_main("process", clip, "-o", out, "-q", "--resume")
    assert r.returncode == 0, r.stderr
    assert_same_results(out, clean_run, "walk", N)


def test_disk_full_on_the_video(clip, clean_run, tmp_path, monkeypatch):
    """The encoder thread's write fails: the error surfaces in the main loop, results stay consistent."""

    class FullMux:
        def __init__(self, container, room: int):
            self._c, self.room = container, room

        def mux(self, packet) -> None:
            self.room -= 1
            if self.room < 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            self._c.mux(packet)

        def close(self) -> None:
            self._c.close()

    real_init = VideoWriter.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        self._container = FullMux(self._container, 8)

    monkeypatch.setattr(VideoWriter, "__init__", init)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="cannot write video .*walk.mp4: No space left on device") as e:
        run_process(ProcessOptions(str(clip), out, progress=False), scripted_pipeline())
    assert "\n" not in str(e.value)
    recs = list(read_jsonl(out / "walk.jsonl"))
    assert 8 <= len(recs) < N and recs == list(read_jsonl(clean_run / "walk.jsonl"))[: len(recs)]
    assert len(list(open_source(str(out / "walk.mp4")))) == 8  # the frames muxed before the failure
    monkeypatch.undo()
    run_process(ProcessOptions(str(clip), out, resume=True, progress=False), scripted_pipeline())
    assert_same_results(out, clean_run, "walk", N)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_real_file_size_limit_in_every_writer(real_clip, real_reference, tmp_path, cli_main):
    """The operating system refuses writes past 60 kB per file (EFBIG, like a full disk for that file):
    one line, exit 1, valid outputs; then --resume without the limit gives the uninterrupted results."""
    out = tmp_path / "limited"
    r = subprocess.run(real_command(real_clip, out), capture_output=True, text=True, timeout=300, cwd=ROOT,
                       preexec_fn=_limit_file_size(60_000))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("occlupose: error: cannot write") and "File too large" in lines[0], lines[0]
    stem = real_clip.stem
    recs = list(read_jsonl(out / f"{stem}.jsonl"))
    assert recs == list(read_jsonl(real_reference / f"{stem}.jsonl"))[: len(recs)]
    assert not (out / f"{stem}.coco.json").exists() and not list(out.glob(".*.tmp"))
    r = cli_main(*real_args(real_clip, out, "--resume"))  # in this process, which has no limit
    assert r.returncode == 0, r.stderr
    assert_same_results(out, real_reference, stem)


def _swap_folder_for_file(out: Path, moved: Path):
    def hook(i: int) -> None:
        # Late enough that the first results (Pipeline.delay frames behind) have opened every file.
        if i == 20 and out.is_dir():
            out.rename(moved)
            out.write_text("in the way")
    return hook


def test_output_folder_replaced_by_a_file_mid_run(cli_main, clip, clean_run, tmp_path, monkeypatch):
    """Open files keep going to the moved folder (they are complete there); the COCO file, written at the
    end, cannot be: one line naming it."""
    out, moved = tmp_path / "out", tmp_path / "moved"
    pipeline = scripted_pipeline()
    pipeline.detector.hook = _swap_folder_for_file(out, moved)
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: pipeline))
    r = cli_main("process", clip, "-o", out, "-q")
    assert_one_line_error(r, "cannot write", "walk.coco.json", "Not a directory")
    assert list(read_jsonl(moved / "walk.jsonl")) == list(read_jsonl(clean_run / "walk.jsonl"))
    assert (moved / "walk.csv").read_bytes() == (clean_run / "walk.csv").read_bytes()
    assert len(list(open_source(str(moved / "walk.mp4")))) == N
    assert not list(moved.glob(".*.tmp"))


def test_output_folder_deleted_mid_run_for_an_image_folder(cli_main, tmp_path, monkeypatch):
    """Annotated images are new files, so they fail at once: one line, the frames before are intact."""
    import cv2

    from tests.reliability.media import pattern

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(N):
        cv2.imwrite(str(photos / f"p{i:02d}.png"), pattern(i, 96, 64))
    out, moved = tmp_path / "out", tmp_path / "moved"
    pipeline = scripted_pipeline()
    pipeline.detector.hook = _swap_folder_for_file(out, moved)
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: pipeline))
    r = cli_main("process", photos, "-o", out, "-q")
    line = assert_one_line_error(r, "cannot write", "photos_annotated", "first")
    recs = list(read_jsonl(moved / "photos.jsonl"))
    assert [rec["source"] for rec in recs] == [f"p{i:02d}.png" for i in range(len(recs))]
    drawn = sorted(p.name for p in (moved / "photos_annotated").iterdir())
    assert drawn == [f"p{i:02d}.jpg" for i in range(len(drawn))] and 0 < len(drawn) <= len(recs)
    assert all(cv2.imread(str(moved / "photos_annotated" / d)) is not None for d in drawn)
    assert f"first {len(recs)} frames" in line


def test_no_room_for_the_run_file(cli_main, clip, tmp_path, monkeypatch):
    """A disk already full: refused before any frame, with the file named."""
    def full(path, data):
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    monkeypatch.setattr("app.process.write_text_atomic", full)
    assert_one_line_error(cli_main("process", clip, "-o", tmp_path / "o", "-q"), "walk.run.json", "No space left")


def test_resume_with_a_damaged_run_file(cli_main, clip, tmp_path, monkeypatch):
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    out = tmp_path / "o"
    assert cli_main("process", clip, "-o", out, "-q", "--max-frames", "20").returncode == 0
    (out / "walk.run.json").write_text('{"version": 1, "sour')
    assert_one_line_error(cli_main("process", clip, "-o", out, "-q", "--resume"), "cannot resume", "damaged")
    (out / "walk.run.json").write_text("[1, 2]")
    assert_one_line_error(cli_main("process", clip, "-o", out, "-q", "--resume"), "cannot resume", "damaged")
    # a JSONL damaged in the middle: resume keeps the whole records before the damage and redoes the rest
    (out / "walk.run.json").unlink()
    assert cli_main("process", clip, "-o", out, "-q", "--max-frames", "20").returncode == 0
    lines = (out / "walk.jsonl").read_bytes().splitlines(keepends=True)
    (out / "walk.jsonl").write_bytes(b"".join(lines[:16]) + b"{garbage\n" + b"".join(lines[17:]))
    r = cli_main("process", clip, "-o", out, "-q", "--resume", "--max-frames", "20")
    assert r.returncode == 0 and f"resumed at frame {16 - scripted_pipeline().delay}" in r.stdout, r.stderr
    assert [rec["frame"] for rec in read_jsonl(out / "walk.jsonl")] == list(range(20))
    assert json.loads((out / "walk.coco.json").read_text())


def test_resume_refuses_a_changed_source_and_stops_at_a_bad_record(cli_main, clip, tmp_path, monkeypatch):
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    src = tmp_path / "walk.mp4"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "o"
    assert cli_main("process", src, "-o", out, "-q", "--max-frames", "20").returncode == 0
    # a record whose poses do not read back (edited by hand): resume redoes it and what follows
    lines = (out / "walk.jsonl").read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[16])
    rec["poses"]["keypoints"] = [[[1.0, 2.0]]]
    (out / "walk.jsonl").write_bytes(b"".join(lines[:16]) + json.dumps(rec).encode() + b"\n" + b"".join(lines[17:]))
    r = cli_main("process", src, "-o", out, "-q", "--max-frames", "20", "--resume")
    assert r.returncode == 0 and f"resumed at frame {16 - scripted_pipeline().delay}" in r.stdout, r.stderr
    # the video replaced by another one of the same name
    write_video(src, n=N + 5, size=(96, 64))
    assert_one_line_error(cli_main("process", src, "-o", out, "-q", "--resume"), "cannot resume", "has changed")


def test_library_warnings_stay_one_line(cli_main, clip, tmp_path, monkeypatch):
    import warnings

    def noisy(cls, cfg):
        warnings.warn("a library note\nthat spans lines", UserWarning)
        return scripted_pipeline()

    monkeypatch.setattr(Pipeline, "from_config", classmethod(noisy))
    r = cli_main("process", clip, "-o", tmp_path / "o", "-q")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = cli_main("-v", "process", clip, "-o", tmp_path / "o2", "-q")
    notes = [ln for ln in r.lines() if "UserWarning" in ln]
    assert notes == ["occlupose: info: UserWarning: a library note that spans lines"], r.stderr


def test_a_drawing_error_surfaces_before_a_frame_is_written_never_inside_it():
    """The encoder thread's failure is raised by reserve(), before the frame's writes, so the frame count
    in the error message is exactly the frames in the JSONL."""
    import threading

    from posecore.io.threads import BackgroundSink

    failed = threading.Event()

    def consume(item):
        if item == 2:
            failed.set()
            raise OutputError("cannot write video x.mp4: No space left on device")

    sink = BackgroundSink(consume, depth=4)
    for item in range(3):
        sink.reserve()
        sink.put(item)
    assert failed.wait(5)
    for _ in range(100):  # the worker records the error just after the event
        try:
            sink.reserve()
        except OutputError as e:
            assert "No space left" in str(e)
            break
        sink.put(None)
    else:
        raise AssertionError("the worker's error never surfaced")
    sink.reserve()
    sink.put(3)  # after a reserve() call, never raises
    sink.close()
