"""``occlupose bench`` in its short mode (a few frames): the table, the JSON report and the chart are
produced and agree with each other. Speed is reported, never asserted."""

import json

import pytest

from app.cli import main


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, demo_clip):
    import io
    from contextlib import redirect_stdout

    out = tmp_path_factory.mktemp("bench")
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["bench", str(demo_clip), "--short", "--frames", "8", "--imgsz", "320", "--device", "cpu",
                     "-o", str(out), "--name", "short", "-q", "--runtimes", "torch", "--ceiling"])
    return code, buf.getvalue(), out


def test_short_bench_writes_a_consistent_report(short_run):
    code, table, out = short_run
    assert code == 0
    report = json.loads((out / "short.json").read_text())
    assert report["settings"]["imgsz"] == 320 and report["settings"]["device"] == "cpu"
    (video,) = report["videos"]
    assert video["frames"] == 8
    tp = video["throughput"]
    assert set(tp) == {"bytetrack", "botsort", "occlupose", "bytetrack_openvino", "botsort_openvino",
                       "occlupose_torch", "network_alone"}  # Ultralytics on OpenVINO; --runtimes torch; --ceiling
    assert video["ratio"]["best_openvino"] == pytest.approx(
        tp["occlupose"]["fps"] / max(tp["bytetrack_openvino"]["fps"], tp["botsort_openvino"]["fps"]), rel=1e-2)
    assert tp["occlupose"]["label"] == "occlupose (openvino fp32)" and tp["occlupose_torch"]["label"] == "occlupose (torch)"
    for run in tp.values():
        assert run["frames"] == 7  # the first frame is the untimed warm-up
        assert run["fps"] > 0 and run["seconds"] > 0
        assert f"{run['fps']:7.2f}" in table
    ceiling = video["ceiling"]  # --ceiling: the pipeline's own detector on the same frames, nothing after it
    assert ceiling["same_people_as_pipeline"] == 1.0
    assert ceiling["pipeline_share"] == pytest.approx(tp["occlupose"]["fps"] / tp["network_alone"]["fps"], rel=1e-2)
    assert "occlupose's network alone" in table and "occlupose / its network alone" in table
    assert video["ratio"]["bytetrack"] == pytest.approx(tp["occlupose"]["fps"] / tp["bytetrack"]["fps"], rel=1e-3)
    stages = video["stages_ms"]
    assert set(stages) >= {"decode", "detect", "pose", "refine", "track", "draw", "encode"}
    assert all(v >= 0 for v in stages.values()) and stages["detect"] > 0 and stages["encode"] > 0
    q = video["quality"]
    # the replayed trackers (fed the same detections) reproduce the timed runs exactly
    assert q["replay_matches_run"] == {"bytetrack": 1.0, "botsort": 1.0, "occlupose": 1.0}
    for t in ("bytetrack", "botsort", "occlupose"):
        assert q["id_switches"][t]["total"] == sum(v for k, v in q["id_switches"][t].items() if k != "total")
    assert report["peak_rss_mb"] > 0
    assert "occlupose / Ultralytics" in table and "ID switches, total" in table and "peak RSS" in table


def test_short_bench_draws_the_chart(short_run):
    pytest.importorskip("matplotlib")
    _, _, out = short_run
    png = out / "short.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rejects_what_is_not_a_video(tmp_path, capsys):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    code = main(["bench", str(tmp_path), "--frames", "2", "-o", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a video file" in err[0]
