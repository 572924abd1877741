import csv
import json

import numpy as np
import pytest

from posecore.io.records import frame_record, poses_from_record
from posecore.io.result_writers import CsvWriter, JsonlWriter, coco_results, read_jsonl, write_coco_results
from posecore.skeleton import COCO17
from posecore.types import FrameResult, Poses, Track, TrackState


def _result(index, rng, n=2):
    kp = rng.uniform(0, 500, (n, 17, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0, 1, (n, 17))
    boxes = np.concatenate([kp[:, :, :2].min(1), kp[:, :, :2].max(1)], 1)
    poses = Poses(boxes, rng.uniform(0.3, 1, n), kp, kp[..., 2] > 0.5)
    tracks = [Track(i + 1, TrackState.CONFIRMED, boxes[i], float(poses.scores[i]), kp[i], poses.seen[i]) for i in range(n)]
    return FrameResult(index, index / 25.0, None, poses, tracks, None)


def test_jsonl_records_parse_back_and_poses_are_exact(tmp_path):
    rng = np.random.default_rng(0)
    results = [_result(i, rng) for i in range(5)]
    w = JsonlWriter(tmp_path / "r.jsonl")
    for r in results:
        w.write(r)
    w.close()
    recs = list(read_jsonl(tmp_path / "r.jsonl"))
    assert [r["frame"] for r in recs] == list(range(5))
    for rec, res in zip(recs, results):
        p = poses_from_record(rec)
        np.testing.assert_array_equal(p.keypoints, res.poses.keypoints)  # bit-exact, for resume
        np.testing.assert_array_equal(p.boxes, res.poses.boxes)
        np.testing.assert_array_equal(p.seen, res.poses.seen)
        t = rec["tracks"][1]
        assert t["id"] == 2 and len(t["keypoints"]) == 17 and t["state"] == "confirmed"
        np.testing.assert_allclose(np.array(t["keypoints"])[:, :2], res.tracks[1].keypoints[:, :2], atol=0.01)


def test_torn_last_line_is_ignored_and_resume_truncates(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "r.jsonl"
    w = JsonlWriter(path)
    for i in range(4):
        w.write(_result(i, rng))
    w.close()
    with open(path, "a") as f:
        f.write('{"v":1,"frame":4,"tra')  # killed mid-write
    assert [r["frame"] for r in read_jsonl(path)] == [0, 1, 2, 3]
    w = JsonlWriter(path, start_frame=2)  # resume from frame 2
    w.write(_result(2, rng))
    w.close()
    assert [r["frame"] for r in read_jsonl(path)] == [0, 1, 2]


def test_csv_rows_and_resume(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "r.csv"
    w = CsvWriter(path)
    results = [_result(i, rng) for i in range(3)]
    for r in results:
        w.write(r)
    w.close()
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 3 * 2 * 17
    r0 = rows[17]  # frame 0, track 2, first joint
    assert r0["frame"] == "0" and r0["track_id"] == "2" and r0["joint"] == COCO17.joints[0]
    assert float(r0["x"]) == pytest.approx(results[0].tracks[1].keypoints[0, 0], abs=0.01)
    w = CsvWriter(path, start_frame=1)
    w.close()
    rows = list(csv.DictReader(open(path)))
    assert {r["frame"] for r in rows} == {"0"} and len(rows) == 34


def test_coco_results_are_complete_and_loadable(tmp_path):
    from pycocotools.coco import COCO

    rng = np.random.default_rng(3)
    path = tmp_path / "r.jsonl"
    w = JsonlWriter(path)
    for i in range(3):
        w.write(_result(i, rng))
    w.close()
    out = tmp_path / "r.coco.json"
    assert write_coco_results(path, out) == 6
    res = json.loads(out.read_text())
    assert {r["track_id"] for r in res} == {1, 2}
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in res)
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in range(3)], "annotations": [],
                  "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.joints), "skeleton": []}]}
    gt.createIndex()
    dt = gt.loadRes(str(out))
    assert len(dt.getAnnIds()) == 6


def test_frame_record_carries_source_name():
    rng = np.random.default_rng(4)
    r = _result(0, rng)
    r.source_name = "img 01.jpg"
    rec = frame_record(r)
    assert rec["source"] == "img 01.jpg"
    assert coco_results([rec])[0]["file_name"] == "img 01.jpg"


def test_coco_results_rank_poses_by_their_confident_joints():
    rng = np.random.default_rng(5)
    r = _result(0, rng)
    r.tracks[0].score, r.tracks[1].score = 0.9, 0.8
    r.tracks[0].keypoints[:, 2] = 0.1  # a confident box whose joints were barely found
    r.tracks[0].keypoints[:3, 2] = (0.3, 0.5, 0.7)
    r.tracks[1].keypoints[:, 2] = 0.6
    first, second = coco_results([frame_record(r)])
    assert first["box_score"] == 0.9 and first["score"] == pytest.approx(0.9 * 0.5, abs=1e-4)
    assert second["box_score"] == 0.8 and second["score"] == pytest.approx(0.8 * 0.6, abs=1e-4)
    assert second["score"] > first["score"]
