"""The benchmark's targets: limits read from ``configs/bench.yaml``, checked against a report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import configs
from posecore.config import from_dict, load_yaml, option


@dataclass
class BenchTargets:
    speed_ratio_min: float = option(1.2, gt=0, help="occlupose frames/s over the faster Ultralytics tracker's")
    openvino_ratio_min: float = option(1.5, gt=0, help="occlupose frames/s over the faster Ultralytics tracker's "
                                                       "on Ultralytics' own OpenVINO export")
    fps_min: float = option(60, gt=0, help="occlupose frames/s, where Ultralytics on OpenVINO was raced "
                                           "(below hd_rows only)")
    hd_rows: int = option(900, ge=1, help="videos with at least this many rows count as HD (1080p and the like)")
    hd_openvino_ratio_min: float = option(1.3, gt=0, help="openvino_ratio_min for HD videos: decoding and "
                                                          "encoding four times the pixels weigh on every contender")
    realtime_min: float = option(1.0, gt=0, help="occlupose frames/s over the video's frame rate")
    tracking_share_max: float = option(0.05, gt=0, le=1, help="share of the frame time spent tracking and smoothing")
    id_switches_ratio_max: float = option(0.5, ge=0, help="occlupose's ID switches over the best Ultralytics tracker's")
    jitter_ratio_max: float = option(0.5, ge=0, help="occlupose's jitter over the lowest of Ultralytics' and raw")
    peak_rss_mb_max: float = option(1536, gt=0, help="peak resident memory of the benchmark process, MB")


def load_targets(path=None) -> BenchTargets:
    """The targets in ``path`` (default: the bundled ``configs/bench.yaml``)."""
    return from_dict(BenchTargets, load_yaml(path or configs.path("bench.yaml")), "")


def check_targets(report: dict, t: BenchTargets) -> dict:
    """Each target with the measured value and whether it is met."""
    out: dict[str, dict] = {}
    for v in report["videos"]:
        q = v["quality"]
        sw = q["id_switches"]
        best_ultra = min(sw["bytetrack"]["total"], sw["botsort"]["total"])
        jit = q["jitter"]
        ultra_jit = min(_num(jit["bytetrack"]["mean"]), _num(jit["botsort"]["mean"]),
                        _num(jit["raw_on_occlupose_tracks"]["mean"]))
        hd = min(v.get("size") or (0, 0)) >= t.hd_rows
        ov_min = t.hd_openvino_ratio_min if hd else t.openvino_ratio_min
        openvino = {}
        if v["ratio"].get("best_openvino"):
            openvino[f"speed_ratio_vs_ultralytics_openvino>={ov_min:g}"] = {
                "value": v["ratio"]["best_openvino"], "met": _ge(v["ratio"]["best_openvino"], ov_min)}
            if not hd:
                fps = v["throughput"]["occlupose"]["fps"]
                openvino[f"frames_per_s>={t.fps_min:g}"] = {"value": fps, "met": fps >= t.fps_min}
        out[v["video"]] = {
            f"speed_ratio>={t.speed_ratio_min:g}": {"value": v["ratio"]["best"],
                                                    "met": _ge(v["ratio"]["best"], t.speed_ratio_min)},
            **openvino,
            "faster_than_real_time" if t.realtime_min == 1.0 else f"realtime>={t.realtime_min:g}":
                {"value": v["realtime"], "met": _ge(v["realtime"], t.realtime_min)},
            f"tracking_share<{100 * t.tracking_share_max:g}%": {"value": v["tracking_share"],
                                                                "met": _lt(v["tracking_share"], t.tracking_share_max)},
            _ratio_name("id_switches", t.id_switches_ratio_max, "best_ultralytics"):
                {"value": [sw["occlupose"]["total"], best_ultra],
                 "met": sw["occlupose"]["total"] <= best_ultra * t.id_switches_ratio_max},
            _ratio_name("jitter", t.jitter_ratio_max, "ultralytics"):
                {"value": [jit["occlupose"]["mean"], ultra_jit],
                 "met": _num(jit["occlupose"]["mean"]) <= ultra_jit * t.jitter_ratio_max},
        }
    rss = report.get("peak_rss_mb")
    out[f"peak_rss<{t.peak_rss_mb_max / 1024:g}GB"] = {"value": rss, "met": rss is not None and rss < t.peak_rss_mb_max}
    s = report.get("still_images")
    if s:
        out["still_image_ap_not_lower"] = {"value": [s["raw"], s["tracked"], s["sequence"]],
                                           "met": s["tracked"] >= s["raw"] - 1e-9}
    return out


def _ratio_name(measure: str, ratio: float, of: str) -> str:
    return f"{measure}<=half_{of}" if ratio == 0.5 else f"{measure}<={ratio:g}x_{of}"


def _num(x) -> float:
    return float(x) if x is not None and np.isfinite(x) else float("nan")


def _ge(x, y) -> bool:
    return x is not None and x >= y


def _lt(x, y) -> bool:
    return x is not None and np.isfinite(x) and x < y
