"""`occlupose process` end to end on the real demo clip: every output parses back, resume is exact,
and an interrupt leaves valid files."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import pytest

from app.process import ProcessOptions, run_process
from app.run.pipeline import Pipeline, PipelineConfig
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import open_source

FRAMES = 30  # past the frames held back (Pipeline.delay), so that SIGINT lands mid-run
IMGSZ = 320  # a quarter of the default detector input: the same code, and the two people are large


def _config() -> PipelineConfig:
    cfg = PipelineConfig()
    cfg.detector.imgsz = IMGSZ
    return cfg


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_config(_config())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, demo_clip, pipeline):
    out = tmp_path_factory.mktemp("full")
    summary = run_process(ProcessOptions(str(demo_clip), out, _config(), max_frames=FRAMES, progress=False), pipeline)
    return out, summary


def test_all_outputs_written_and_parse_back(full_run):
    out, summary = full_run
    assert summary.frames == FRAMES
    recs = list(read_jsonl(out / "hug.jsonl"))
    assert [r["frame"] for r in recs] == list(range(FRAMES))
    # the clip shows two people from the first frame on; they get two distinct, stable IDs
    ids_per_frame = [sorted(t["id"] for t in r["tracks"]) for r in recs]
    assert all(len(ids) == 2 for ids in ids_per_frame[2:])
    assert len({tuple(ids) for ids in ids_per_frame[2:]}) == 1
    coco = json.loads((out / "hug.coco.json").read_text())
    assert len(coco) == sum(len(r["tracks"]) for r in recs)
    assert {c["track_id"] for c in coco} == set(ids_per_frame[-1])
    rows = list(csv.DictReader(open(out / "hug.csv")))
    assert len(rows) == 17 * len(coco)
    first = recs[5]["tracks"][0]
    row = next(r for r in rows if r["frame"] == "5" and r["track_id"] == str(first["id"]) and r["joint"] == "nose")
    assert float(row["x"]) == pytest.approx(first["keypoints"][0][0], abs=0.01)
    frames = list(open_source(str(out / "hug.mp4")))
    assert len(frames) == FRAMES and frames[0].image.shape == (1080, 1920, 3)


def test_resume_gives_identical_results(tmp_path, demo_clip, pipeline, full_run):
    full_out, _ = full_run
    out = tmp_path / "resumed"
    run_process(ProcessOptions(str(demo_clip), out, _config(), max_frames=18, progress=False), pipeline)
    # simulate a kill mid-write: a torn last line in the JSONL, and no COCO file
    with open(out / "hug.jsonl", "a") as f:
        f.write('{"v":1,"frame":18,"tracks":[{"id"')
    s = run_process(ProcessOptions(str(demo_clip), out, _config(), max_frames=FRAMES, resume=True, progress=False),
                    pipeline)
    # The frames before the break are redone: they were smoothed and stitched as the last frames of the earlier run.
    assert s.resumed_from == 18 - pipeline.delay > 0 and s.frames == FRAMES
    assert list(read_jsonl(out / "hug.jsonl")) == list(read_jsonl(full_out / "hug.jsonl"))
    assert (out / "hug.csv").read_text() == (full_out / "hug.csv").read_text()
    assert json.loads((out / "hug.coco.json").read_text()) == json.loads((full_out / "hug.coco.json").read_text())
    assert len(list(open_source(str(out / "hug.mp4")))) == FRAMES


def test_resume_refuses_other_settings(tmp_path, demo_clip, pipeline):
    from posecore.errors import OccluposeError

    out = tmp_path / "r"
    run_process(ProcessOptions(str(demo_clip), out, _config(), max_frames=3, progress=False), pipeline)
    cfg = PipelineConfig()  # the default detector input, 640
    with pytest.raises(OccluposeError, match="detector.imgsz"):
        run_process(ProcessOptions(str(demo_clip), out, cfg, resume=True, progress=False), pipeline)


def test_sigint_leaves_valid_files_and_resume_finishes(tmp_path, demo_clip, full_run, cli_main):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "app", "process", str(demo_clip), "-o", str(out), "-q", "--imgsz", str(IMGSZ),
           "--max-frames", str(FRAMES)]
    # A job started in the background (nohup make test &) inherits SIGINT ignored: give it a terminal's default.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    jsonl = out / "hug.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_bytes().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    recs = list(read_jsonl(jsonl))
    assert 5 <= len(recs) < FRAMES
    assert not (out / "hug.coco.json").exists()  # complete or absent
    assert len(list(open_source(str(out / "hug.mp4")))) == len(recs)  # playable to the last frame
    r = cli_main(*cmd[3:], "--resume")  # in this process: the files are all a resume has to go on
    assert r.returncode == 0, r.stderr
    assert list(read_jsonl(jsonl)) == list(read_jsonl(full_run[0] / "hug.jsonl"))
