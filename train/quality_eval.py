"""``python -m train eval-quality``: the pipeline's detector settings (extra passes, input sizes) side by side.

Every setting runs on every image of each labelled set of the config (``sets``: COCO-format files; sets
of the same name are pooled, :func:`train.pipeline_eval.load_heldout`) as ``occlupose process`` runs on
still images, and is scored with pycocotools: keypoint AP, AP50, AR, and AP on the visible (v = 2) and
occluded (v = 1) joints alone. No model is trained here, so every labelled image may be used.

Cost: seconds per frame of each setting's detector on the first frames of each ``videos`` entry,
single-threaded as the pipeline's detection workers run on a two-core CPU, medians of interleaved
repeats (other processes' load hits every setting alike), and the people found per frame (score >= 0.25).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from posecore.autosize import AUTO, PROBE_FRAMES, fixed_choice, probe
from posecore.config import from_dict, load_yaml, option
from posecore.detector import Detector, DetectorConfig
from posecore.errors import ConfigError
from posecore.multiscale import MultiPassDetector, PassesConfig, preset
from posecore.types import Poses

from .datasets import DatasetError
from .config import HeldOutSplit
from .pipeline_eval import HeldOutSet, _plain, load_heldout

Print = Callable[[str], None]
METRICS = ("AP", "AP50", "AR", "visible.AP", "occluded.AP")
COUNT_SCORE = 0.25  # people counted per frame: score at least this


@dataclass
class QualityEvalConfig:
    sets: list[HeldOutSplit] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    frames: int = option(6, ge=1, le=1000, help="frames of each video timed")
    repeats: int = option(3, ge=1, le=50)
    # name -> {"detector": {...}, "passes": {...}}: the settings compared, each over the fast preset
    settings: dict[str, dict] = field(default_factory=dict)


def load_config(path: str | Path) -> QualityEvalConfig:
    cfg = from_dict(QualityEvalConfig, load_yaml(path), "")
    if not cfg.settings:
        raise ConfigError("settings: name at least one setting to evaluate")
    for name, s in cfg.settings.items():
        unknown = set(s or {}) - {"detector", "passes"}
        if unknown:
            raise ConfigError(f"settings.{name}: unknown section(s) {sorted(unknown)}; expected detector, passes")
    return cfg


def build(setting: dict, cache: dict[int, Detector], frozen: bool,
          video: list[np.ndarray] | None = None) -> MultiPassDetector | Detector:
    """The detector of one setting; base detectors are shared between settings with the same input size.
    ``frozen``: TorchScript graphs as the pipeline runs them, traced once per input shape, so for videos
    only (photos of many shapes would spend their time tracing; the numbers are the same). ``imgsz: auto``
    is chosen on the first frames of ``video`` as ``occlupose process`` chooses it; on photos (no
    ``video``) it is the base size, as for an image folder."""
    dcfg = from_dict(DetectorConfig, {"device": "cpu", **(setting.get("detector") or {})}, "detector")
    pcfg = from_dict(PassesConfig, {**preset("fast"), **(setting.get("passes") or {})}, "passes")

    def get(imgsz: int) -> Detector:
        if imgsz not in cache:
            cache[imgsz] = Detector(dcfg.weights, imgsz, dcfg.conf, dcfg.iou, dcfg.max_det, dcfg.device, dcfg.half,
                                    frozen=frozen)
        return cache[imgsz]

    imgsz = dcfg.imgsz
    if imgsz == AUTO:
        fixed = fixed_choice(not video, pcfg.extra)
        imgsz = fixed.imgsz if fixed else probe(lambda size: get(size).detect, video[:PROBE_FRAMES]).imgsz
        pcfg = pcfg.for_auto_size(imgsz)
    base = get(imgsz)
    if not pcfg.active:
        return base
    return MultiPassDetector(base, pcfg, get(pcfg.extra_imgsz) if pcfg.extra == "scale" else None)


def score(hs: HeldOutSet, detector) -> dict[str, float]:
    results = []
    for image_id, path in sorted(hs.paths.items()):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"evaluation image missing or unreadable: {path}")
        det = detector.detect(frame)
        results += hs.results(Poses(det.boxes, det.scores, det.keypoints), image_id)
    return hs.evaluate(results)


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    if not frames:
        raise DatasetError(f"video missing or unreadable: {path}")
    return frames


def cost(detectors: dict[str, object], frames: list[np.ndarray], repeats: int) -> dict[str, dict[str, float]]:
    """{name: {"s": seconds per frame (median), "people": people per frame}}, one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        people = {n: float(np.mean([(d.detect(f).scores >= COUNT_SCORE).sum() for f in frames]))
                  for n, d in detectors.items()}  # also the warm-up (traces per input shape)
        times: dict[str, list[float]] = {n: [] for n in detectors}
        for _ in range(repeats):
            for n, d in detectors.items():  # interleaved
                per = []
                for f in frames:
                    t0 = time.perf_counter()
                    d.detect(f)
                    per.append(time.perf_counter() - t0)
                times[n].append(statistics.median(per))
        return {n: {"s": statistics.median(times[n]), "people": people[n]} for n in detectors}
    finally:
        torch.set_num_threads(before)


def table(names: list[str], scores: dict, sets: list[HeldOutSet], speed: dict) -> list[str]:
    lines = []
    for hs in sets:
        lines.append(f"{hs.name} ({len(hs.paths)} images, {hs.people} people)")
        lines.append(f"  {'setting':<14}" + "".join(f"{m:>12}" for m in METRICS))
        base = scores[names[0]][hs.name]["AP"]
        for n in names:
            m = scores[n][hs.name]
            cells = "".join(f"{m.get(k, math.nan):>12.4f}" for k in METRICS)
            gain = f"  ({100 * (m['AP'] / base - 1):+.1f}% AP)" if base > 0 and n != names[0] else ""
            lines.append(f"  {n:<14}{cells}{gain}")
    for video, per in speed.items():
        lines.append(f"cost on {video} (1 thread; ms/frame, x {names[0]}, people/frame at score >= {COUNT_SCORE})")
        ref = per[names[0]]["s"]
        for n in names:
            lines.append(f"  {n:<14}{per[n]['s'] * 1000:>9.1f}  x{per[n]['s'] / ref:>5.2f}  {per[n]['people']:>6.1f}")
    return lines


def evaluate_quality(config: str | Path, only: list[str] | None = None, speed: bool = True,
                     output: Path | None = None, out: Print = print, note: Print = print) -> dict:
    cfg = load_config(config)
    names = list(cfg.settings) if not only else only
    missing = [n for n in names if n not in cfg.settings]
    if missing:
        raise ConfigError(f"--settings: unknown setting(s) {missing}; the config has {list(cfg.settings)}")
    cache: dict[int, Detector] = {}
    detectors = {n: build(cfg.settings[n], cache, frozen=False) for n in names}
    sets = load_heldout(cfg.sets) if cfg.sets else []
    note("eval-quality: " + ", ".join(f"{h.name} ({len(h.paths)} images, {h.people} people)" for h in sets))
    scores: dict[str, dict] = {}
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per process: spinning thread pools stall on a loaded machine
    try:
        for n in names:
            scores[n] = {hs.name: score(hs, detectors[n]) for hs in sets}
            note(f"  {n}: " + "; ".join(f"{h} " + " ".join(f"{m} {s.get(m, math.nan):.4f}" for m in METRICS)
                                        for h, s in scores[n].items()))
    finally:
        torch.set_num_threads(before)
    sp = {}
    if speed:
        for v in cfg.videos:
            frozen: dict[int, Detector] = {}
            frames = video_frames(Path(v), max(cfg.frames, PROBE_FRAMES))
            timed = {n: build(cfg.settings[n], frozen, frozen=True, video=frames) for n in names}
            sp[Path(v).name] = cost(timed, frames[:cfg.frames], cfg.repeats)
    for line in table(names, scores, sets, sp):
        out(line)
    report = {"settings": {n: cfg.settings[n] for n in names}, "scores": scores, "speed": sp}
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / "quality_eval.json").write_text(json.dumps(_plain(report), indent=1))
        note(f"wrote {output / 'quality_eval.json'}")
    return report
