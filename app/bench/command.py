"""``occlupose bench VIDEO``: occlupose against Ultralytics ``YOLO.track`` (ByteTrack and BoT-SORT) with
the same weights, image size and device, on the same decoded frames.

For each video it measures, in one run:

* throughput (frames/s) of the contenders, side by side (see ``speed``): Ultralytics on PyTorch and on its
  own OpenVINO export, occlupose (and, with ``--runtimes``, on other runtimes; with ``--ceiling``, its
  network alone), and occlupose's latency per stage and its share spent in tracking and smoothing;
* tracking quality without ground truth (see ``metrics``, ``events``, ``replay``): ID switches under occlusion stress
  relative to each tracker's clean run, and keypoint jitter, all trackers fed the same detections;

and, once, the peak memory of the process and (with ``--coco``) keypoint AP on still images raw
against through the tracker. It prints a table with the targets of ``configs/bench.yaml`` (see
``targets``) and writes a JSON report and a PNG chart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from app.run.autosize import with_imgsz
from app.run.pipeline import Pipeline, PipelineConfig, available_cores, torch_threads
from app.run.progress import progress_bar
from posecore.autosize import base_size
from posecore.errors import ConfigError, OccluposeError
from posecore.io.sources import VideoFileSource, open_source

from .events import plan_events
from .metrics import deviation, id_switches, jitter, raw_along
from .replay import replay
from .report import format_report
from .speed import (NetworkContender, OccluposeContender, RunStats, UltralyticsContender, frame_ms, limited,
                    peak_rss_mb, race, stage_summary, tracking_share)
from .targets import check_targets, load_targets
from .tracker_adapters import TRACKERS, OccluposeTracker, UltralyticsTracker

ULTRALYTICS_TRACKERS = {"bytetrack": ("bytetrack.yaml", "Ultralytics track, ByteTrack"),
                        "botsort": ("botsort.yaml", "Ultralytics track, BoT-SORT")}
KINDS = ("block", "person")


def register(subparsers) -> None:
    from app.cli import add_pipeline_arguments, positive_int

    p = subparsers.add_parser("bench", help="benchmark occlupose against Ultralytics YOLO.track (speed and quality)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="video file(s) to measure on")
    p.add_argument("--mot", nargs="+", metavar="SEQ",
                   help="also score identity against ground truth on these MOT sequence folders "
                        "(SEQ/SEQ.mp4 + SEQ/gt/gt.txt; see app/bench/mot.py)")
    p.add_argument("--short", action="store_true",
                   help="a quick check (CI): 10 frames, turns of 3, one occlusion of 2 frames per kind")
    p.add_argument("--frames", type=positive_int, help="use at most this many frames of each video")
    p.add_argument("--chunk", type=positive_int, help="frames per turn when contenders alternate (30)")
    p.add_argument("--occlude-frames", type=positive_int, nargs="+", metavar="K",
                   help="frames each occlusion covers its person (one stressed copy per K; default 10)")
    p.add_argument("--occlude-kinds", nargs="+", choices=KINDS, default=list(KINDS),
                   help="occluders: grey block, pasted person walking past (default both)")
    p.add_argument("--occlude-events", type=positive_int, help="most occlusions per stressed copy (8)")
    p.add_argument("--ultralytics-threads", type=positive_int,
                   help="torch threads for Ultralytics (default: what Ultralytics sets itself)")
    p.add_argument("--runtimes", nargs="+", metavar="RUNTIME", default=[],
                   help="also race occlupose on these runtimes: torch, openvino, openvino:int8, openvino:bf16")
    p.add_argument("--no-ultralytics-openvino", action="store_true",
                   help="skip Ultralytics track on its own OpenVINO export (raced by default where OpenVINO works)")
    p.add_argument("--ceiling", action="store_true",
                   help="also race occlupose's network alone (its detector on the same frames, nothing after it): "
                        "the frames/s occlupose could reach if everything but the network were free")
    p.add_argument("--coco", metavar="ANNOTATIONS.json",
                   help="also score keypoint AP on these still images, raw and through the tracker")
    p.add_argument("--coco-images", metavar="DIR", help="image folder for --coco (default: the file's folder)")
    p.add_argument("-o", "--output", default="outputs/bench", help="folder for the report (default outputs/bench)")
    p.add_argument("--name", default="bench", help="report file names: NAME.json, NAME.png (default bench)")
    p.add_argument("--keep-video", action="store_true", help="keep occlupose's annotated videos in the output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_pipeline_arguments(p)
    # Ultralytics makes one pass of the network per frame; occlupose races with the same unless --quality
    # asks for its extra passes.
    p.set_defaults(func=cmd_bench, quality="fast")



def cmd_bench(args: argparse.Namespace) -> int:
    from app.cli import pipeline_config

    cfg = pipeline_config(args)
    # One input size for every contender and video: Ultralytics races at the size occlupose runs.
    cfg = with_imgsz(cfg, base_size(cfg.detector.imgsz))
    if not args.videos and not args.mot:
        raise OccluposeError("bench: give at least one VIDEO or --mot SEQ")
    if args.mot:  # ground-truth identity scores (app.bench.mot)
        from .mot import format_mot_report, run_mot_bench

        out = Path(args.output)
        mot = run_mot_bench(args.mot, Pipeline.from_config(cfg), cfg, out, args.quiet)
        out.mkdir(parents=True, exist_ok=True)
        _write_json(mot, out / f"{args.name}.mot.json")
        print(format_mot_report(mot))
        print(f"report: {out / f'{args.name}.mot.json'}")
    if args.videos:
        report = run_bench(args, cfg)
        print(format_report(report))
    return 0


def _apply_defaults(args: argparse.Namespace) -> None:
    """Fill the settings left unset, from the full or the short defaults."""
    short = getattr(args, "short", False)
    defaults = {"frames": 10 if short else None, "chunk": 3 if short else 30,
                "occlude_frames": [2] if short else [10], "occlude_events": 1 if short else 8}
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


# ---------------------------------------------------------------------------------------- running

def run_bench(args: argparse.Namespace, cfg: PipelineConfig) -> dict:
    _apply_defaults(args)
    if cfg.pose.backend != "yolo":
        raise ConfigError("pose.backend: the benchmark compares the yolo backend (Ultralytics has no other)")
    for v in args.videos:
        if not isinstance(open_source(v), VideoFileSource):
            raise OccluposeError(f"{v}: the benchmark needs a video file")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.from_config(cfg)
    workers, threads = pipeline.concurrency
    report = {
        "command": "occlupose " + " ".join(sys.argv[1:]) if sys.argv and "bench" in sys.argv else "occlupose bench",
        "settings": {
            "imgsz": cfg.detector.imgsz, "device": str(pipeline.detector.device), "conf": cfg.detector.conf,
            "weights": Path(pipeline.detector.weights).name, "frames": args.frames, "chunk": args.chunk,
            "occlude_frames": list(args.occlude_frames), "occlude_kinds": list(args.occlude_kinds),
            "occlude_events": args.occlude_events, "cores": available_cores(),
            "occlupose_workers": workers, "occlupose_threads": threads,
        },
        "machine": _machine(),
        "videos": [],
        "still_images": None,
        "peak_rss_mb": None,
    }
    json_path, chart_path = out / f"{args.name}.json", out / f"{args.name}.png"
    for video in args.videos:
        report["videos"].append(bench_video(video, pipeline, cfg, args, out))
        report["peak_rss_mb"] = round(peak_rss_mb(), 1)
        _write_json(report, json_path)  # results as they come
    if args.coco:
        from .stills import still_image_ap

        with torch_threads(threads):
            ap = still_image_ap(args.coco, lambda im: pipeline.estimator.estimate(im, pipeline.detector.detect(im)),
                                cfg.tracker, args.coco_images)
        report["still_images"] = asdict(ap)
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    report["targets"] = check_targets(report, load_targets())
    _write_json(report, json_path)
    from .chart import write_chart

    chart = write_chart(report, chart_path)
    report["files"] = {"json": str(json_path), "chart": str(chart) if chart else None}
    _write_json(report, json_path)
    return report


def bench_video(video: str, pipeline: Pipeline, cfg: PipelineConfig, args, out: Path) -> dict:
    from posecore.detector import load_yolo
    from posecore.runtime import openvino_problem

    from .runtimes import (ULTRALYTICS_OPENVINO, load_ultralytics_openvino, parse_variant, variant_config,
                                 variant_name)

    source = open_source(video)
    name = Path(video).name
    count = source.frame_count
    n_hint = min(count, args.frames) if (count and args.frames) else (args.frames or count)
    detector = pipeline.detector
    track_args = dict(imgsz=cfg.detector.imgsz, conf=cfg.detector.conf, iou=cfg.detector.iou, device=detector.device,
                      verbose=False, **detector._precision)
    tmp = None if args.keep_video else tempfile.TemporaryDirectory(prefix="occlupose-bench-")
    video_out = (out if tmp is None else Path(tmp.name)) / f"{Path(video).stem}.occlupose.mp4"
    contenders = [UltralyticsContender(key, label, yaml, load_yolo(detector.weights), video, args.frames, track_args,
                                       args.ultralytics_threads)
                  for key, (yaml, label) in ULTRALYTICS_TRACKERS.items()]
    with_ov = not getattr(args, "no_ultralytics_openvino", False) and openvino_problem() is None
    if with_ov:
        ov_args = {k: v for k, v in track_args.items() if k not in ("half", "quantize")}
        contenders += [UltralyticsContender(key, label, yaml, load_ultralytics_openvino(detector.weights,
                                                                                        cfg.detector.imgsz),
                                            video, args.frames, ov_args, args.ultralytics_threads, runtime="openvino")
                       for key, (yaml, label) in ULTRALYTICS_OPENVINO.items()]
    occ = OccluposeContender(pipeline, video, args.frames, video_out)
    contenders.append(occ)
    occ.stats.label = f"occlupose ({_runtime_label(detector)})"
    for text in getattr(args, "runtimes", []):
        runtime, precision = parse_variant(text)
        variant = Pipeline.from_config(variant_config(cfg, runtime, precision))
        other = OccluposeContender(variant, video, args.frames, video_out.with_suffix(f".{runtime}-{precision}.mp4"))
        other.stats.name = variant_name(runtime, precision)
        other.stats.label = f"occlupose ({_runtime_label(variant.detector)})"
        contenders.append(other)
    network = NetworkContender(pipeline, video, args.frames) if getattr(args, "ceiling", False) else None
    if network is not None:
        network.stats.label = f"occlupose's network alone ({_runtime_label(detector)})"
        contenders.append(network)
    bar = progress_bar(None if n_hint is None else n_hint * len(contenders), f"{name}: speed", not args.quiet,
                       mininterval=1.0, leave=False)
    try:
        race(contenders, args.chunk, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
        for c in contenders:
            c.close()
        if tmp is not None:
            tmp.cleanup()
    runs: dict[str, RunStats] = {c.stats.name: c.stats for c in contenders}
    n = len(occ.poses)
    quality = _quality(video, n, occ, runs, pipeline, cfg, args, name)
    speed = {k: {"label": r.label, "fps": round(r.fps, 3), "seconds": round(r.seconds, 3), "frames": r.frames,
                 "includes": r.includes, "threads": r.threads} for k, r in runs.items()}
    occ_fps = runs["occlupose"].fps
    best = max(runs["bytetrack"].fps, runs["botsort"].fps)
    best_ov = max((runs[k].fps for k in ULTRALYTICS_OPENVINO if k in runs), default=0.0)
    return {
        "video": name, "path": str(video), "source_fps": source.fps, "frames": n,
        "size": list(occ.size) if occ.size else None,
        "throughput": speed,
        "ratio": {"bytetrack": _ratio(occ_fps, runs["bytetrack"].fps), "botsort": _ratio(occ_fps, runs["botsort"].fps),
                  "best": _ratio(occ_fps, best), "best_openvino": _ratio(occ_fps, best_ov)},
        "runtimes": {k: {"fps": round(r.fps, 3), "vs_best_openvino": _ratio(r.fps, best_ov)}
                     for k, r in runs.items() if k.startswith("occlupose")},
        "realtime": _ratio(occ_fps, source.fps or 0.0),
        "ceiling": None if network is None else _ceiling(network, occ, occ_fps, best_ov),
        "stages_ms": {k: round(v, 3) for k, v in stage_summary(runs["occlupose"]).items()},
        "frame_ms": round(frame_ms(runs["occlupose"]), 3),
        "tracking_share": round(tracking_share(runs["occlupose"]), 5),
        "tracking_share_wall": round(tracking_share(runs["occlupose"], wall=True), 5),
        "ultralytics_stages_ms": {k: {s: round(v, 3) for s, v in runs[k].stage_ms().items()}
                                  for k in ULTRALYTICS_TRACKERS},
        "quality": quality,
    }


def _ceiling(network: NetworkContender, occ: OccluposeContender, occ_fps: float, best_ov: float) -> dict:
    # same_people_as_pipeline checks it did the pipeline's detection work: as many people in every frame
    same = [a == len(b) for a, b in zip(network.detections, occ.poses)]
    return {"fps": round(network.stats.fps, 3), "vs_best_openvino": _ratio(network.stats.fps, best_ov),
            "pipeline_share": _ratio(occ_fps, network.stats.fps),
            "same_people_as_pipeline": round(float(np.mean(same)), 4) if same else None}


def _quality(video: str, n: int, occ: OccluposeContender, runs: dict[str, RunStats], pipeline: Pipeline,
             cfg: PipelineConfig, args, name: str) -> dict:
    plans = [plan_events(occ.poses, kind, k, args.occlude_events) for k in args.occlude_frames
             for kind in args.occlude_kinds]
    detector, estimator = pipeline.detector, pipeline.estimator

    def factory(tracker: str):
        if tracker == "occlupose":
            return OccluposeTracker(cfg.tracker)
        return UltralyticsTracker(ULTRALYTICS_TRACKERS[tracker][0])

    bar = progress_bar(n, f"{name}: quality", not args.quiet, mininterval=1.0, leave=False)
    try:
        with torch_threads(pipeline.concurrency[1]):
            run = replay(lambda: limited(video, n), occ.poses, plans,
                         lambda im: estimator.estimate(im, detector.detect(im)), factory,
                         bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    switches = {}
    for t in TRACKERS:
        per = {p.name: id_switches(run.clean[t], run.stressed[p.name][t], ~p.changed(n)) for p in plans}
        switches[t] = {**per, "total": int(sum(per.values()))}
    jit = {t: asdict(jitter(run.clean[t])) for t in TRACKERS}
    jit["raw_on_occlupose_tracks"] = asdict(jitter(raw_along(run.clean["occlupose"], occ.poses)))
    matches = {}
    for t in TRACKERS:
        ran = runs[t].outputs
        same = [a.same_as(b) for a, b in zip(run.clean[t], ran)]
        matches[t] = round(float(np.mean(same)), 4) if same else None
    return {
        "plans": [{"name": p.name, "kind": p.kind, "k": p.frames, "events": len(p.events),
                   "changed_frames": int(p.changed(n).sum())} for p in plans],
        "events": int(sum(len(p.events) for p in plans)),
        "detected_again": run.detected_again,
        "id_switches": switches,
        "jitter": jit,
        "smoothing_deviation": round(deviation(run.clean["occlupose"], occ.poses), 5),
        "replay_matches_run": matches,
    }


def _runtime_label(detector) -> str:
    return detector.runtime if detector.runtime == "torch" else f"{detector.runtime} {detector.precision}"
def _machine() -> dict:
    import torch

    from posecore.ultralytics_env import import_ultralytics

    ultralytics = import_ultralytics()  # with our settings folder, not ~/.config/Ultralytics
    return {"python": platform.python_version(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def _write_json(report: dict, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_jsonable), encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b and b > 0 else None
