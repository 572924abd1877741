"""The metric adapter against a small case computed by hand, the file readers and the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.cli import main
from app.bench.mot_eval import MotBoxes, evaluate, read_mot, read_results, write_mot

A = [10, 10, 60, 110]    # person A, still
B = [200, 10, 250, 110]  # person B, still, far from A
FAR = [400, 300, 450, 400]


def _case() -> tuple[MotBoxes, MotBoxes]:
    """GT: A (id 1) and B (id 2) in frames 1-4. Results: id 1 follows A throughout; B is id 2 in frames
    1-2 and id 3 in frame 3 (a switch), missed in frame 4; id 4 is a false box in frame 1."""
    gt = MotBoxes([1, 2, 3, 4, 1, 2, 3, 4], [1, 1, 1, 1, 2, 2, 2, 2], [A] * 4 + [B] * 4)
    res = MotBoxes([1, 2, 3, 4, 1, 2, 3, 1], [1, 1, 1, 1, 2, 2, 3, 4], [A] * 4 + [B] * 3 + [FAR])
    return gt, res


def test_scores_match_the_hand_computed_case():
    s = evaluate(*_case())
    # 8 GT boxes; 7 matched, 1 missed, 1 false, 1 switch: MOTA = 1 - (1 + 1 + 1) / 8.
    assert (s.tp, s.fn, s.fp, s.id_switches) == (7, 1, 1, 1)
    assert s.mota == pytest.approx(0.625)
    # Best one-to-one identities: A-1 (4 boxes), B-2 (2 boxes): IDTP 6 of 8 GT and 8 result boxes.
    assert s.idf1 == pytest.approx(2 * 6 / (8 + 8))
    # IoU is 1 wherever boxes match, so every HOTA threshold gives the same: DetA = 7 / (7 + 1 + 1);
    # AssA over the 7 matches: A-1: 4/4 (x4), B-2: 2/(2+2) (x2), B-3: 1/(1+3) (x1).
    deta, assa = 7 / 9, (4 * 1 + 2 * 0.5 + 0.25) / 7
    assert s.deta == pytest.approx(deta)
    assert s.assa == pytest.approx(assa)
    assert s.hota == pytest.approx(math.sqrt(deta * assa))
    assert (s.gt_ids, s.result_ids) == (2, 4)


def test_perfect_results_score_one():
    gt, _ = _case()
    s = evaluate(gt, gt)
    assert (s.mota, s.idf1, s.hota, s.id_switches, s.fp, s.fn) == (1.0, 1.0, pytest.approx(1.0), 0, 0, 0)


def test_a_shifted_box_below_half_iou_is_a_miss_and_a_false_box():
    gt = MotBoxes([1], [1], [A])
    res = MotBoxes([1], [1], [[35, 10, 85, 110]])  # IoU 25/75 = 1/3
    s = evaluate(gt, res)
    assert (s.tp, s.fp, s.fn) == (0, 1, 1)


def test_mot_text_round_trip_and_jsonl_frames_are_one_based(tmp_path):
    gt, res = _case()
    write_mot(tmp_path / "res.txt", res)
    back = read_mot(tmp_path / "res.txt")
    assert evaluate(gt, back) == evaluate(gt, res)
    rec = [{"frame": f - 1, "tracks": [{"id": 7, "state": "confirmed", "box": B},
                                       {"id": 8, "state": "lost", "box": A}]} for f in (1, 2, 3, 4)]
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rec))
    seen = read_results(path)
    assert list(seen.frames) == [1, 2, 3, 4] and set(seen.ids) == {7}
    both = read_results(path, include_lost=True)
    assert evaluate(gt, both).tp == 8


def test_ground_truth_rows_marked_ignore_are_dropped(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,1,10,10,50,100,1,-1,-1,-1\n1,2,200,10,50,100,0,-1,-1,-1\n")
    assert len(read_mot(p, min_conf=1e-9)) == 1
    assert np.allclose(read_mot(p).boxes[0], A)


def test_eval_track_command(tmp_path, capsys):
    gt, res = _case()
    write_mot(tmp_path / "gt.txt", gt)
    write_mot(tmp_path / "res.txt", res)
    assert main(["eval-track", str(tmp_path / "res.txt"), str(tmp_path / "gt.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id_switches"] == 1


@pytest.mark.parametrize("content", ["1,1,a,b,c,d\n", "0,1,10,10,5,5\n", "1,1,10\n"])
def test_eval_track_bad_input_is_one_line(tmp_path, capsys, content):
    (tmp_path / "gt.txt").write_text("1,1,10,10,50,100,1\n")
    (tmp_path / "res.txt").write_text(content)
    assert main(["eval-track", str(tmp_path / "res.txt"), str(tmp_path / "gt.txt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("occlupose: error:") and err.count("\n") == 1


def test_eval_track_missing_files(tmp_path, capsys):
    assert main(["eval-track", str(tmp_path / "no.jsonl"), str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
