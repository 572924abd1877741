"""``occlupose bench-models``: per-person latency of each pose model variant, and of the refiners.

For every model it prints the parameters and multiply-adds at its input size, then the time the
top-down estimator spends per frame on P people -- preprocessing the crops, one batched forward pass
(fp16 and channels_last on CUDA), decoding -- divided by P, as the median over repeats. Weights are
random (timing does not depend on them). Results print as they come and, with --json, are saved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from posecore.device import resolve_device
from posecore.errors import OccluposeError, OutputError

DEFAULT_MODELS = ("hrnet_small", "dag_hrnet_small", "hrnet_w32", "dag_hrnet_w32", "hrnet_w48", "dag_hrnet_w48")


@dataclass
class BenchRow:
    model: str
    input: str  # "HxW" or "graph"
    params_m: float
    gmacs: float  # per person (10^9 multiply-adds)
    device: str
    people: int
    ms_per_person: float  # wall clock
    ms_per_batch: float
    cpu_ms_per_person: float  # process CPU time (all threads): steadier than wall time on a busy machine


def register(subparsers) -> None:
    p = subparsers.add_parser("bench-models", help="per-person latency of each pose model variant",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                   help=f"registered model names (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--people", type=int, nargs="+", default=[1, 4], metavar="P",
                   help="people per frame, i.e. crops per forward pass (default 1 4)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per setting; the median counts (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--flip-test", action="store_true", help="time with the flipped crops as well")
    p.add_argument("--no-refiners", action="store_true", help="skip FGMH-GCN and CoupleGraph as refiners")
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.set_defaults(func=run)


def model_complexity(model: torch.nn.Module, example) -> tuple[float, float]:
    """(parameters in millions, 10^9 multiply-adds of one call on ``example``), counted without the model's device."""
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # The counter does not see inside fused attention kernels; the math backend spells them out.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*example)
    return params, counter.get_total_flops() / 2 / 1e9


def _median_ms(fn, warmup: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median (wall ms, process CPU ms) of one call."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t, c = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def bench_pose_model(name: str, people: list[int], device: torch.device, args) -> list[BenchRow]:
    from posecore.estimators.topdown import TopDownEstimator
    from posecore.models import build_model

    torch.manual_seed(0)
    model = build_model({"name": name})
    w, h = model.input_size
    params, gmacs = model_complexity(model, (torch.zeros(1, 3, h, w),))
    est = TopDownEstimator(model, device=device, flip_test=args.flip_test)
    rng = np.random.default_rng(0)
    rows = []
    for p in people:
        crops = rng.integers(0, 255, (p, h, w, 3), dtype=np.uint8)
        ms, cpu = _median_ms(lambda: est.predict_crops(crops), args.warmup, args.repeats, device)
        rows.append(BenchRow(name, f"{h}x{w}", round(params, 2), round(gmacs, 3), str(device), p,
                             round(ms / p, 2), round(ms, 2), round(cpu / p, 2)))
    return rows


def bench_refiners(people: list[int], device: torch.device, args) -> list[BenchRow]:
    from posecore.models import build_model

    rows = []
    fgmh = build_model({"name": "fgmh_gcn"}).eval().to(device)
    couple = build_model({"name": "couplegraph"}).eval().to(device)
    for p in people:
        coords = torch.rand(p, 17, 2, device=device) * 2 - 1
        scores = torch.rand(p, 17, device=device)
        params, gmacs = model_complexity(fgmh, (coords[:1], None, scores[:1]))
        with torch.inference_mode():
            ms, cpu = _median_ms(lambda: fgmh(coords, None, scores), args.warmup, args.repeats, device)
        rows.append(BenchRow("fgmh_gcn", "graph", round(params, 2), round(gmacs, 4), str(device), p,
                             round(ms / p, 3), round(ms, 3), round(cpu / p, 3)))
        pairs = max(1, p // 2)  # people per frame -> pairs
        kp = torch.rand(pairs, 2, 17, 3, device=device) * 100
        boxes = torch.tensor([[[0.0, 0, 60, 100], [30, 10, 100, 110]]], device=device).repeat(pairs, 1, 1)
        params, gmacs = model_complexity(couple, (kp[:1], boxes[:1]))
        with torch.inference_mode():
            ms, cpu = _median_ms(lambda: couple(kp, boxes), args.warmup, args.repeats, device)
        rows.append(BenchRow("couplegraph (per pair)", "graph", round(params, 2), round(gmacs, 4), str(device), pairs,
                             round(ms / pairs, 3), round(ms, 3), round(cpu / pairs, 3)))
    return rows


def _print_row(r: BenchRow) -> None:
    print(f"{r.model:<24}{r.input:>9}{r.params_m:>9.2f}{r.gmacs:>9.3f}  {r.device:<7}{r.people:>6}"
          f"{r.ms_per_person:>12.2f}{r.ms_per_batch:>11.1f}{r.cpu_ms_per_person:>14.2f}", flush=True)


def run(args) -> int:
    from posecore.models import list_models

    unknown = [m for m in args.models if m not in list_models()]
    if unknown:
        raise OccluposeError(f"--models: unknown {unknown[0]!r}; choose from {list_models()}")
    if any(p < 1 for p in args.people) or args.repeats < 1 or args.warmup < 0:
        raise OccluposeError("--people and --repeats must be >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads, load {load:.1f}, device {device}{f' ({gpu})' if gpu else ''}"
          f"{', flip test' if args.flip_test else ''}", flush=True)
    print(f"{'model':<24}{'input':>9}{'params M':>9}{'GMACs':>9}  {'device':<7}{'people':>6}"
          f"{'ms/person':>12}{'ms/frame':>11}{'CPU ms/person':>14}", flush=True)
    rows: list[BenchRow] = []
    for name in args.models:
        if name in ("fgmh_gcn", "couplegraph"):
            continue
        for row in bench_pose_model(name, args.people, device, args):
            _print_row(row)
            rows.append(row)
    if not args.no_refiners:
        for row in bench_refiners(args.people, device, args):
            _print_row(row)
            rows.append(row)
    if args.json:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"device": str(device), "gpu": gpu, "threads": torch.get_num_threads(),
                                        "load_before": load,
                                        "torch": torch.__version__, "flip_test": args.flip_test,
                                        "rows": [asdict(r) for r in rows]}, indent=2))
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e}") from None
        print(f"wrote {path}")
    return 0
