"""Stopping ``occlupose process`` at any moment: SIGTERM (and SIGKILL, which allows no cleanup) on a real
shared clip with the real detector. Afterwards every output is valid (whole JSONL lines, whole CSV frames,
a video that plays to its last frame, no COCO file rather than a partial one, no temporary files), and
``--resume`` finishes with results identical to an uninterrupted run. (SIGINT: tests/app/test_process.py.)
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from posecore.errors import OutputError, SourceError
from posecore.io import result_writers
from posecore.io.result_writers import read_jsonl, write_coco_results
from posecore.io.sources import open_source
from trackers import TrackerConfig

from tests.reliability.conftest import REAL_FRAMES, ROOT, assert_same_results, real_args, real_command

FRAMES = REAL_FRAMES


def _run_until(cmd: list[str], jsonl: Path, lines: int, sig: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _check_valid_outputs(out: Path, stem: str, frame_atomic: bool) -> int:
    """Every output parses; returns the number of complete frames."""
    jsonl = out / f"{stem}.jsonl"
    raw = jsonl.read_bytes()
    recs = list(read_jsonl(jsonl))
    n = len(recs)
    assert 0 < n < FRAMES and [r["frame"] for r in recs] == list(range(n))
    complete = raw.count(b"\n")
    if frame_atomic:
        assert raw.endswith(b"\n") and complete == n  # not even a torn line
    else:
        assert complete == n  # at most a torn last line, which readers skip
    rows = (out / f"{stem}.csv").read_text().splitlines()
    assert rows[0].startswith("frame,")
    per_frame = {}
    for row in rows[1:]:
        f = int(row.split(",", 1)[0])
        per_frame[f] = per_frame.get(f, 0) + 1
    expected = {r["frame"]: 17 * len(r["tracks"]) for r in recs if r["tracks"]}
    if frame_atomic:
        assert per_frame == expected  # whole frames, the same frames as the JSONL
    else:
        assert all(per_frame[f] == expected[f] for f in per_frame if f < n)  # whole frames where both have them
    if frame_atomic:
        assert len(list(open_source(str(out / f"{stem}.mp4")))) == n  # plays to the last frame the results have
    else:
        # Killed: the video plays to its last complete fragment (one a second), if it got that far.
        video = out / f"{stem}.mp4"
        try:
            played = list(open_source(str(video))) if video.exists() else []
        except SourceError as e:
            assert "no frames" in str(e) or "no video stream" in str(e), e
            played = []
        assert len(played) <= n
        assert all(f.image.shape == (1080, 1920, 3) for f in played)
    assert not (out / f"{stem}.coco.json").exists()  # complete or absent
    assert not list(out.glob(".*.tmp"))
    return n


def test_sigterm_leaves_valid_outputs_and_resume_is_identical(real_clip, real_reference, tmp_path, cli_main):
    clip, reference = real_clip, real_reference
    out = tmp_path / "term"
    stem = clip.stem
    # Past the frames held back for smoothing and stitching, so that the resume has frames to keep.
    r = _run_until(real_command(clip, out), out / f"{stem}.jsonl", 20, signal.SIGTERM)
    assert r.returncode == 130, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("occlupose: interrupted:") and "--resume" in lines[0], r.stderr
    n = _check_valid_outputs(out, stem, frame_atomic=True)
    assert f"after {n} frames" in lines[0]
    # The resume runs in this process: the stopped process's files are all it has, as in a new one.
    r = cli_main(*real_args(clip, out, "--resume"))
    assert r.returncode == 0, r.stderr
    # The last frames written are redone: they were smoothed and stitched without the frames after them.
    c = TrackerConfig()
    assert f"resumed at frame {n - c.smoothing_lag - c.stitch_gap - 1}" in r.stdout
    assert_same_results(out, reference, stem)


def test_sigkill_leaves_readable_outputs_and_resume_is_identical(real_clip, real_reference, tmp_path, cli_main):
    clip, reference = real_clip, real_reference
    """No cleanup at all: JSONL lines are flushed per frame, the video is fragmented, COCO is atomic."""
    out = tmp_path / "kill"
    stem = clip.stem
    r = _run_until(real_command(clip, out), out / f"{stem}.jsonl", 18, signal.SIGKILL)
    assert r.returncode == -signal.SIGKILL
    _check_valid_outputs(out, stem, frame_atomic=False)
    r = cli_main(*real_args(clip, out, "--resume"))
    assert r.returncode == 0, r.stderr
    assert_same_results(out, reference, stem)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_coco_file_is_complete_or_absent(real_reference, real_clip, tmp_path, monkeypatch, failure):
    """The COCO file is streamed to a temporary file and renamed: a failure half-way leaves the earlier
    file (or none) and no temporary file."""
    jsonl = real_reference / f"{real_clip.stem}.jsonl"
    target = tmp_path / "r.coco.json"
    target.write_text("[]")  # an earlier, complete file
    real = result_writers._iter_coco_results
    count = {"n": 0}

    def failing(records):
        for item in real(records):
            count["n"] += 1
            if count["n"] == 20:
                raise failure
            yield item

    monkeypatch.setattr(result_writers, "_iter_coco_results", failing)
    with pytest.raises((OutputError, KeyboardInterrupt)):
        write_coco_results(jsonl, target)
    assert target.read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.coco.json"]
