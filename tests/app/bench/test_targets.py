"""The benchmark's targets come from configs/bench.yaml and are checked against a report."""

from __future__ import annotations

import dataclasses

import pytest

from app.bench.targets import BenchTargets, check_targets, load_targets
from posecore.errors import ConfigError


def _report(ratio=1.5, switches=(2, 8, 9), jitter=(0.02, 0.08, 0.07, 0.06), rss=700.0):
    occ, bt, bs = switches
    return {
        "videos": [{
            "video": "clip.mp4", "ratio": {"best": ratio}, "realtime": 2.0, "tracking_share": 0.01,
            "quality": {"id_switches": {"occlupose": {"total": occ}, "bytetrack": {"total": bt},
                                        "botsort": {"total": bs}},
                        "jitter": {"occlupose": {"mean": jitter[0]}, "bytetrack": {"mean": jitter[1]},
                                   "botsort": {"mean": jitter[2]}, "raw_on_occlupose_tracks": {"mean": jitter[3]}}},
        }],
        "peak_rss_mb": rss,
        "still_images": None,
    }


def test_bundled_targets_are_the_defaults():
    assert load_targets() == BenchTargets()


def test_targets_met_and_missed():
    t = check_targets(_report(), load_targets())
    video = t["clip.mp4"]
    assert all(v["met"] for v in video.values())
    assert t["peak_rss<1.5GB"]["met"]
    missed = check_targets(_report(ratio=1.1, switches=(5, 8, 9), rss=2000.0), load_targets())
    assert not missed["clip.mp4"]["speed_ratio>=1.2"]["met"]
    assert not missed["clip.mp4"]["id_switches<=half_best_ultralytics"]["met"]
    assert not missed["peak_rss<1.5GB"]["met"]


def test_hd_videos_have_their_own_openvino_ratio_and_no_fps_target():
    """The issue's aims: 1.5x Ultralytics-on-OpenVINO and 60 frames/s on vtest (768x576 at 640), 1.3x on
    the 1080p clips."""
    def report(size):
        r = _report()
        r["videos"][0].update(size=size, ratio={"best": 1.5, "best_openvino": 1.4},
                              throughput={"occlupose": {"fps": 30.0}})
        return r

    sd = check_targets(report([768, 576]), load_targets())["clip.mp4"]
    assert not sd["speed_ratio_vs_ultralytics_openvino>=1.5"]["met"] and not sd["frames_per_s>=60"]["met"]
    hd = check_targets(report([1920, 1080]), load_targets())["clip.mp4"]
    assert hd["speed_ratio_vs_ultralytics_openvino>=1.3"]["met"]
    assert not any(k.startswith("frames_per_s") for k in hd)


def test_targets_follow_the_config(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text("speed_ratio_min: 1.0\n")
    t = check_targets(_report(ratio=1.1), load_targets(path))
    assert t["clip.mp4"]["speed_ratio>=1"]["met"]
    assert dataclasses.replace(load_targets(path), speed_ratio_min=1.2) == BenchTargets()
    path.write_text("speed_ratio: 1.0\n")
    with pytest.raises(ConfigError, match="speed_ratio"):
        load_targets(path)
