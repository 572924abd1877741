"""`occlupose process` on images: a folder of photos (or one image) is processed as stills, each image alone,
unless the user sets `stills` (with --set or in a --config file), e.g. for a folder of video frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from app import cli
from app.run.pipeline import Pipeline
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.result_writers import read_jsonl
from tests.conftest import shared_path
from tests.reliability.media import ScriptedDetector, pattern, write_video
from trackers.tracker import Tracker

# People (cx, cy, height) in each synthetic image: the one at the right is in images 1 and 2.
PEOPLE = {0: [(20, 40, 40)], 1: [(20, 40, 40), (75, 40, 40)], 2: [(75, 40, 40)],
          3: [(20, 40, 40), (48, 40, 40), (75, 40, 40)]}


def run(capfd, *args) -> tuple[int, str]:
    """``occlupose ARGS`` in this process: (exit status, stderr)."""
    capfd.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capfd.readouterr().err


@pytest.fixture
def scripted(monkeypatch) -> list:
    """The command line's pipeline with a scripted detector (people by image, from PEOPLE) and the real
    tracker, built from the config the command gives it; returns those configs."""
    configs = []

    def from_config(cls, cfg):
        configs.append(cfg)
        return Pipeline(ScriptedDetector(lambda i: PEOPLE[i]), YoloPoseEstimator(), Tracker.from_config(cfg.tracker),
                        prefetch=2, stills=cfg.stills)

    monkeypatch.setattr(Pipeline, "from_config", classmethod(from_config))
    return configs


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in PEOPLE:
        cv2.imwrite(str(folder / f"p{i}.png"), pattern(i, 96, 64))
    return folder


def ids(rec: dict) -> list[int]:
    return [t["id"] for t in rec["tracks"]]


def id_right(rec: dict) -> int:
    """The ID of the person at the right of a synthetic image."""
    (t,) = [t for t in rec["tracks"] if t["box"][0] > 50 and t["state"] == "confirmed"]
    return t["id"]


def test_image_folder_defaults_to_stills(capfd, scripted, photos, tmp_path):
    out = tmp_path / "out"
    code, err = run(capfd, "process", photos, "-o", out, "-q")
    assert code == 0, err
    assert [cfg.stills for cfg in scripted] == [True]
    recs = list(read_jsonl(out / "photos.jsonl"))
    assert [r["source"] for r in recs] == [f"p{i}.png" for i in PEOPLE]
    # each image alone: everyone in it is reported, numbered from 1; nobody carries over from the image before
    for i, rec in enumerate(recs):
        assert ids(rec) == list(range(1, len(PEOPLE[i]) + 1)), rec["tracks"]
        assert {t["state"] for t in rec["tracks"]} == {"confirmed"}
    assert id_right(recs[1]) == 2 and id_right(recs[2]) == 1
    assert json.loads((out / "photos.run.json").read_text())["config"]["stills"] is True


@pytest.mark.parametrize("how", ["set", "config"])
def test_stills_false_keeps_tracking_across_images(capfd, scripted, photos, tmp_path, how):
    out = tmp_path / "out"
    if how == "set":
        extra = ["--set", "stills=false"]
    else:
        (tmp_path / "frames.yaml").write_text("stills: false\n")
        extra = ["--config", tmp_path / "frames.yaml"]
    code, err = run(capfd, "process", photos, "-o", out, "-q", *extra)
    assert code == 0, err
    assert [cfg.stills for cfg in scripted] == [False]
    recs = list(read_jsonl(out / "photos.jsonl"))
    # tracked like video frames: the person at the right keeps ID 2 from image 1 to image 2, and the one who
    # left is still held, not measured (lost, or interpolated when they are back within tracker.fill_gap)
    assert id_right(recs[1]) == id_right(recs[2]) == 2
    held = [t for t in recs[2]["tracks"] if t["id"] == 1]
    assert len(held) == 1 and not any(held[0]["seen"])
    assert json.loads((out / "photos.run.json").read_text())["config"]["stills"] is False


def test_other_settings_keep_the_stills_default(capfd, scripted, photos, tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("tracker:\n  max_lost: 5\n")
    code, err = run(capfd, "process", photos, "-o", tmp_path / "out", "-q", "--config", cfg,
                    "--set", "prefetch=2", "--imgsz", "320")
    assert code == 0, err
    assert [(c.stills, c.tracker.max_lost, c.detector.imgsz) for c in scripted] == [(True, 5, 320)]


def test_single_image_is_a_still(capfd, scripted, photos, tmp_path):
    code, err = run(capfd, "process", photos / "p1.png", "-o", tmp_path / "out", "-q")
    assert code == 0, err
    assert [cfg.stills for cfg in scripted] == [True]
    assert ids(next(read_jsonl(tmp_path / "out" / "p1.jsonl"))) == [1, 2]


def test_video_is_still_tracked(capfd, scripted, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", n=4, size=(96, 64))
    code, err = run(capfd, "process", clip, "-o", tmp_path / "out", "-q", "--no-video")
    assert code == 0, err
    assert [cfg.stills for cfg in scripted] == [False]
    assert id_right(list(read_jsonl(tmp_path / "out" / "clip.jsonl"))[2]) == 2


def test_resume_of_an_image_folder_keeps_stills(capfd, scripted, photos, tmp_path):
    out = tmp_path / "out"
    assert run(capfd, "process", photos, "-o", out, "-q", "--max-frames", "2")[0] == 0
    code, err = run(capfd, "process", photos, "-o", out, "-q", "--resume")
    assert code == 0, err
    assert [cfg.stills for cfg in scripted] == [True, True]
    assert [ids(r) for r in read_jsonl(out / "photos.jsonl")] == [[1], [1, 2], [1], [1, 2, 3]]


def test_real_photos_each_alone_unless_stills_false(capfd, tmp_path):
    """COCO photos with YOLO: by default every detected person is reported, numbered from 1 in each photo;
    tracked like video frames, people the tracker has not confirmed are missing and IDs carry over."""
    photos = shared_path("coco_sample")
    common = ["-q", "--no-video", "--imgsz", "320", "--device", "cpu"]
    code, err = run(capfd, "process", photos, "-o", tmp_path / "stills", *common)
    assert code == 0, err
    recs = list(read_jsonl(tmp_path / "stills" / "coco_sample.jsonl"))
    assert len(recs) == 4
    people = [len(r["poses"]["keypoints"]) for r in recs]
    assert sum(people) >= 4
    assert [ids(r) for r in recs] == [list(range(1, n + 1)) for n in people]

    code, err = run(capfd, "process", photos, "-o", tmp_path / "tracked", *common, "--set", "stills=false")
    assert code == 0, err
    tracked = list(read_jsonl(tmp_path / "tracked" / "coco_sample.jsonl"))
    assert [len(r["poses"]["keypoints"]) for r in tracked] == people  # the same detections
    assert [ids(r) for r in tracked] != [ids(r) for r in recs]
