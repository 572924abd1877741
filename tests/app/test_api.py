"""The Python API: README's examples run as written; ``track`` gives exactly what ``occlupose process``
writes; conversions agree with the JSONL and CSV; settings errors are the command line's."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.api import as_arrays, as_dataframe, as_dict, settings_mapping, track
from posecore.errors import ConfigError
from posecore.io.result_writers import read_jsonl
from tests.conftest import ROOT

FRAMES = 4
IMGSZ = 320


def readme_api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_api_examples():
    blocks = readme_api_blocks()
    assert len(blocks) >= 3 and all("from app import" in b for b in blocks)


def test_readme_api_examples_run(tmp_path):
    """Every example, as written, in one fresh interpreter (one start-up for all of them)."""
    blocks = readme_api_blocks()
    script = tmp_path / "examples.py"
    script.write_text("\n".join(f"print('--- example {i}')\n{b}" for i, b in enumerate(blocks)), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outputs = re.split(r"--- example \d+\n", r.stdout)[1:]
    assert len(outputs) == len(blocks) and all(o.strip() for o in outputs), r.stdout
    # What the comments in the examples promise.
    for promised in re.findall(r"# (tracker\.\S+: must be .*)$", "".join(blocks), flags=re.M):
        assert promised in r.stdout


@pytest.fixture(scope="module")
def processed(demo_clip, tmp_path_factory) -> Path:
    from app.process import process_source

    out = tmp_path_factory.mktemp("processed")
    process_source(str(demo_clip), out, {"detector": {"imgsz": IMGSZ}}, video=False, max_frames=FRAMES, progress=False)
    return out


@pytest.fixture(scope="module")
def results(demo_clip) -> list:
    return list(track(demo_clip, imgsz=IMGSZ, max_frames=FRAMES))


def test_track_gives_what_process_writes(results, processed):
    assert [as_dict(r) for r in results] == list(read_jsonl(processed / "hug.jsonl"))


def test_arrays_agree_with_the_record(results):
    for r in results:
        rec, arr = as_dict(r), as_arrays(r)
        assert arr["ids"].tolist() == [t["id"] for t in rec["tracks"]]
        assert arr["keypoints"].shape == (len(rec["tracks"]), 17, 3) and arr["seen"].shape == (len(rec["tracks"]), 17)
        assert arr["boxes"].shape == (len(rec["tracks"]), 4) and arr["keypoints"].dtype == np.float32
        if rec["tracks"]:
            np.testing.assert_allclose(arr["keypoints"][:, :, :2], [[k[:2] for k in t["keypoints"]] for t in rec["tracks"]],
                                       atol=0.006)
            assert arr["seen"].astype(int).tolist() == [t["seen"] for t in rec["tracks"]]
    assert any(len(r.tracks) for r in results)


def test_dataframe_has_the_csv_rows(results, processed):
    pytest.importorskip("pandas")
    table = as_dataframe(results)
    with open(processed / "hug.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(table.columns) == list(rows[0].keys())
    assert len(table) == len(rows)
    for (_, got), want in zip(table.iterrows(), rows):
        assert (got.frame, got.track_id, got.joint, int(got.seen)) == \
            (int(want["frame"]), int(want["track_id"]), want["joint"], int(want["seen"]))
        assert abs(got.x - float(want["x"])) <= 0.006 and abs(got.confidence - float(want["confidence"])) <= 6e-5


def test_settings_take_every_spelling_and_reject_like_the_command_line(tmp_path, capfd):
    nested = {"detector": {"imgsz": 320}, "tracker": {"max_lost": 60, "smoothing_lag": 2}}
    assert settings_mapping({"imgsz": 320, "tracker": {"max_lost": 60}, "tracker__smoothing_lag": 2}) == nested
    with pytest.raises(ConfigError) as api_error:
        track("video.mp4", tracker__max_lost=-1)
    from app import cli

    capfd.readouterr()
    assert cli.main(["process", str(tmp_path / "video.mp4"), "--set", "tracker.max_lost=-1"]) == 1
    assert capfd.readouterr().err.strip() == f"occlupose: error: {api_error.value}"
    with pytest.raises(ConfigError, match="trackr: unknown key"):
        track("video.mp4", trackr={"max_lost": 1})
    with pytest.raises(ConfigError, match="max_frames"):
        track("video.mp4", max_frames=0)


def test_short_names_load_lazily():
    code = ("import sys, app.cli; assert 'app.api' not in sys.modules; "
            "from app import track, Pipeline, open_source; assert 'app.api' in sys.modules; print(track.__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "app.api", r.stderr
