"""``occlupose export``: convert the detector's network to OpenVINO now (fp32 or int8), into the cache that
``runtime: openvino`` reads, instead of on the first run."""

from __future__ import annotations

import argparse
import sys
import time

from app.arguments import whole_number


def register(sub) -> None:
    p = sub.add_parser("export", help="convert the detector to OpenVINO (fp32, or int8 calibrated on your frames)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32", help="default fp32")
    p.add_argument("--det-weights", help="YOLO weights (.pt); default: the bundled yolo11n-pose")
    p.add_argument("--imgsz", type=whole_number(32, 4096), default=640,
                   help="inference size the calibration frames are letterboxed to (default 640)")
    p.add_argument("--calibration", nargs="+", metavar="PATH",
                   help="int8: videos, images or folders of them to calibrate on (training data, never the "
                        "images you evaluate on)")
    p.add_argument("--frames", type=whole_number(1, 5000), default=300,
                   help="int8: calibration frames, spread over the sources (default 300)")
    p.add_argument("--refiner-outputs", action="store_true",
                   help="also output the neck maps the refiner reads (the model `pose.refine: on` uses)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from posecore.detector import Detector
    from posecore.errors import ConfigError, OccluposeError
    from posecore.runtime import openvino_problem
    from posecore.runtime.calibration import calibration_frames
    from posecore.runtime.loader import export_model

    problem = openvino_problem()
    if problem:
        raise OccluposeError(problem)
    if args.precision == "int8" and not args.calibration:
        raise ConfigError("--precision int8 needs --calibration PATH... (videos or images to calibrate on)")
    det = Detector(args.det_weights, imgsz=args.imgsz, device="cpu", runtime="torch")
    frames = calibration_frames(args.calibration, args.frames) if args.calibration else None
    if args.precision == "int8":
        print(f"calibrating on {len(frames)} frames from {len(args.calibration)} source(s)", file=sys.stderr)
    t0 = time.perf_counter()
    entry = export_model(det, args.precision, frames, neck=args.refiner_outputs, sources=args.calibration)
    print(f"exported {det.weights.name} ({args.precision}) in {time.perf_counter() - t0:.1f} s: {entry.path}")
    return 0
