"""The benchmark's report as text: a table per video, still-image AP, memory and the targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .tracker_adapters import TRACKERS


def format_report(report: dict) -> str:
    s = report["settings"]
    lines = [f"occlupose bench: imgsz {s['imgsz']}, device {s['device']}, weights {s['weights']}, "
             f"{s['cores']} CPU cores, torch {report['machine']['torch']}, ultralytics {report['machine']['ultralytics']}"]
    for v in report["videos"]:
        lines += _format_video(v)
    st = report.get("still_images")
    if st:
        lines.append("")
        lines.append(f"still images ({st['images']} images, {st['people']} people, {Path(st['annotations']).name}): "
                     f"keypoint AP raw {st['raw']:.4f} | through the tracker, each image alone {st['tracked']:.4f} | "
                     f"all images as one sequence {st['sequence']:.4f}")
    lines.append("")
    lines.append(f"peak RSS of the benchmark process (all three contenders loaded): {report['peak_rss_mb']:.0f} MB")
    t = report.get("targets")
    if t:
        lines.append("")
        lines.append("targets:")
        for key, val in t.items():
            if "met" in val:
                lines.append(f"  {'met    ' if val['met'] else 'NOT met'}  {key}: {_short(val['value'])}")
            else:
                for name, item in val.items():
                    lines.append(f"  {'met    ' if item['met'] else 'NOT met'}  {key}: {name} = {_short(item['value'])}")
    files = report.get("files")
    if files:
        lines.append("")
        lines.append(f"report: {files['json']}" + (f", chart: {files['chart']}" if files.get("chart") else ""))
    return "\n".join(lines)


def _format_video(v: dict) -> list[str]:
    size = "x".join(map(str, v["size"])) if v.get("size") else "?"
    fps = f"{v['source_fps']:.2f}" if v.get("source_fps") else "?"
    tp = v["throughput"]
    timed = tp["occlupose"]["frames"]
    lines = ["", f"== {v['video']}  ({size} @ {fps} fps, {v['frames']} frames; timed from the second frame, "
                 f"{timed} frames, contenders alternating)",
             "throughput (every contender decodes the same file with the same decoder; decoding counts for all)"]
    for key, r in tp.items():
        lines.append(f"  {r['label']:40s} {r['fps']:7.2f} frames/s   {r['includes']}; {r['threads']}")
    r = v["ratio"]
    lines.append(f"  occlupose / Ultralytics: {r['bytetrack']:.2f}x ByteTrack, {r['botsort']:.2f}x BoT-SORT, "
                 f"{r['best']:.2f}x the faster;  real time: {_x(v['realtime'])}")
    if r.get("best_openvino"):
        lines.append("  occlupose / the faster Ultralytics on its OpenVINO export: "
                     + ", ".join(f"{tp[k]['label']} {x['vs_best_openvino']:.2f}x" for k, x in v["runtimes"].items()))
    c = v.get("ceiling")
    if c:
        vs = f" = {c['vs_best_openvino']:.2f}x the faster Ultralytics on OpenVINO" if c.get("vs_best_openvino") else ""
        lines.append(f"  occlupose's network alone: {c['fps']:.2f} frames/s{vs}; occlupose / its network alone: "
                     f"{c['pipeline_share']:.2f}x (1.00x: everything after the network costs nothing)")
    st = v["stages_ms"]
    lines.append("occlupose latency per stage (ms/frame; stages overlap across threads, so they do not add up to "
                 f"the {v['frame_ms']:.1f} ms between frames)")
    lines.append("  " + " | ".join(f"{k} {st[k]:.2f}" for k in ("decode", "detect", "pose", "refine", "track", "draw",
                                                                 "encode")))
    lines.append(f"  tracking + smoothing: {st['track_cpu']:.2f} ms of CPU = {100 * v['tracking_share']:.2f} % of the time per "
                 f"frame ({st['track']:.2f} ms = {100 * v['tracking_share_wall']:.2f} % wall clock, "
                 "which also counts waiting for a core or the GIL while the other threads work)")
    q = v["quality"]
    names = {"bytetrack": "ByteTrack", "botsort": "BoT-SORT", "occlupose": "occlupose"}
    lines.append(f"quality (every tracker gets the same detections; {q['events']} occlusion events, "
                 f"{q['detected_again']} stressed frames detected again)")
    lines.append(f"  {'':40s}" + "".join(f"{names[t]:>12s}" for t in TRACKERS))
    for p in q["plans"]:
        label = f"ID switches, {p['kind']} k={p['k']} ({p['events']} events)"
        lines.append(f"  {label:40s}" + "".join(f"{q['id_switches'][t][p['name']]:12d}" for t in TRACKERS))
    lines.append(f"  {'ID switches, total':40s}" + "".join(f"{q['id_switches'][t]['total']:12d}" for t in TRACKERS))
    lines.append(f"  {'jitter (mean |accel| / person size)':40s}" +
                 "".join(f"{_num(q['jitter'][t]['mean']):12.5f}" for t in TRACKERS))
    lines.append(f"  {'jitter samples (joint x frame)':40s}" + "".join(f"{q['jitter'][t]['samples']:12d}" for t in TRACKERS))
    raw = q["jitter"]["raw_on_occlupose_tracks"]
    lines.append(f"  on exactly occlupose's samples the raw detections' jitter is {_num(raw['mean']):.5f}: smoothing keeps "
                 f"{_num(q['jitter']['occlupose']['mean']) / _num(raw['mean']):.0%} of it")
    lines.append(f"  smoothing moves occlupose's keypoints by {q['smoothing_deviation']:.4f} person sizes on average "
                 "from the raw detections")
    m = q["replay_matches_run"]
    lines.append("  replayed trackers reproduce the timed runs' tracks on "
                 + ", ".join(f"{names[t]} {100 * (m[t] or 0):.1f} %" for t in TRACKERS) + " of frames")
    return lines


def _num(x) -> float:
    return float(x) if x is not None and np.isfinite(x) else float("nan")


def _x(r) -> str:
    return f"{r:.2f}x" if r is not None else "?"


def _short(v) -> str:
    if isinstance(v, list):
        return " vs ".join(_short(x) for x in v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
