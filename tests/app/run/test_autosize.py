"""``detector.imgsz: auto`` in a batch run: chosen on the first frames, which still reach the outputs,
recorded in STEM.run.json, and kept as recorded by ``--resume``."""

from __future__ import annotations

import json

import pytest

from app.process import ProcessOptions, run_process
from app.run.autosize import flip_note
from app.run.pipeline import Pipeline, PipelineConfig
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.autosize import SizeChoice
from posecore.io.result_writers import read_jsonl
from posecore.multiscale import PassesConfig
from tests.reliability.media import ListSource, ScriptedDetector, pattern
from trackers.tracker import Tracker

W, H, FRAMES = 1280, 720, 6


@pytest.fixture
def built(monkeypatch) -> dict:
    """Pipelines with a scripted detector whose one person is ``state["height"]`` px tall in the frame;
    ``state["sizes"]`` lists the input size of every pipeline built, ``state["flips"]`` whether it flips."""
    state = {"height": 150.0, "sizes": [], "flips": []}

    def from_config(cls, cfg):
        state["sizes"].append(cfg.detector.imgsz)
        state["flips"].append(cfg.passes.flips)
        detector = ScriptedDetector(lambda i: [(300.0 + 5 * i, 400.0, state["height"])])
        return Pipeline(detector, YoloPoseEstimator(), Tracker.from_config(cfg.tracker), prefetch=2)

    monkeypatch.setattr(Pipeline, "from_config", classmethod(from_config))
    return state


def run(out, **kw):
    source = ListSource([pattern(i, W, H) for i in range(FRAMES)], name="crowd")
    return run_process(ProcessOptions("crowd", out, video=False, progress=False, **kw), source=source)


def test_small_people_get_a_larger_size_and_every_frame_is_kept(tmp_path, built):
    summary = run(tmp_path)
    # 150 px in a 1280-wide frame is 75 px at 640: small, so the source runs at its long side, 1280
    assert summary.imgsz.imgsz == 1280 and built["sizes"] == [640, 1280]
    assert built["flips"] == [True, False]  # flip: auto is off at the raised size
    assert [r["frame"] for r in read_jsonl(tmp_path / "crowd.jsonl")] == list(range(FRAMES))
    record = json.loads((tmp_path / "crowd.run.json").read_text())
    assert record["config"]["detector"]["imgsz"] == "auto" and record["auto_imgsz"]["imgsz"] == 1280


def test_large_people_keep_640_with_one_pipeline(tmp_path, built):
    built["height"] = 400.0  # 200 px at 640
    assert run(tmp_path).imgsz.imgsz == 640 and built["sizes"] == [640] and built["flips"] == [True]


def test_resume_keeps_the_recorded_choice(tmp_path, built):
    cfg = PipelineConfig()
    cfg.tracker.smoothing_lag = cfg.tracker.stitch_gap = 0  # results final at once: a resume starts at frame 4
    run(tmp_path, config=cfg, max_frames=4)
    built["sizes"].clear()
    built["height"] = 400.0  # measured again, these frames would now give 640: the record decides
    summary = run(tmp_path, config=cfg, resume=True)
    assert built["sizes"] == [1280] and summary.imgsz.imgsz == 1280 and summary.resumed_from > 0
    record = json.loads((tmp_path / "crowd.run.json").read_text())["auto_imgsz"]
    assert record["imgsz"] == 1280 and "small" in record["reason"]  # the first run's record, whole
    assert [r["frame"] for r in read_jsonl(tmp_path / "crowd.jsonl")] == list(range(FRAMES))
    # a fresh run measures again
    built["sizes"].clear()
    assert run(tmp_path / "fresh").imgsz.imgsz == 640 and built["sizes"] == [640]


def test_a_fixed_size_is_not_measured(tmp_path, built):
    cfg = PipelineConfig()
    cfg.detector.imgsz = 960
    assert run(tmp_path, config=cfg).imgsz is None and built["sizes"] == [960]
    assert built["flips"] == [True]  # a size asked for keeps the flip test
    assert "auto_imgsz" not in json.loads((tmp_path / "crowd.run.json").read_text())


def test_a_damaged_record_is_measured_again(tmp_path, built):
    run(tmp_path, max_frames=2)
    path = tmp_path / "crowd.run.json"
    record = json.loads(path.read_text())
    record["auto_imgsz"] = {"imgsz": "huge"}
    path.write_text(json.dumps(record))
    built["sizes"].clear()
    assert run(tmp_path, resume=True).imgsz.imgsz == 1280 and built["sizes"] == [640, 1280]


def test_the_note_says_when_the_flip_test_was_left_out():
    raised, kept = SizeChoice(960, "people small"), SizeChoice(640, "people large")
    assert "flip test off" in flip_note(PassesConfig(), raised)
    assert flip_note(PassesConfig(), kept) == "" and flip_note(PassesConfig(flip=True), raised) == ""
