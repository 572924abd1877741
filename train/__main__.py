"""``python -m train fit|eval``: train and evaluate the pose models on keypoint datasets on disk.

    python -m train fit  --config configs/train/coco_mini_cpu.yaml [key=value ...]
    python -m train fit  --config configs/train/couplegraph_dag_coco.yaml --init runs/dag_w32_coco/best.pt
    torchrun --nproc_per_node=8 -m train fit --config configs/train/dag_w32_coco.yaml
    python -m train eval --config configs/train/dag_w32_coco.yaml --weights runs/dag_w32_coco/best.pt
    python -m train eval --config ... --predictions results.json      (score a COCO results file)
    python -m train eval-pipeline --config configs/train/refiner_yolo11n.yaml   (base vs base + refiner)
    python -m train eval-quality --config configs/eval/quality.yaml   (extra passes side by side)

A wrong setting or a missing file prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from posecore.errors import OccluposeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description="Train and evaluate top-down pose models.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{fit,eval,eval-pipeline,eval-quality}")

    fit = sub.add_parser("fit", help="train (resumes from OUTPUT_DIR/last_state.pt when present)")
    fit.add_argument("--config", required=True, help="training YAML (see configs/train)")
    fit.add_argument("--init", metavar="CKPT",
                     help="a checkpoint to start from: for a pose model its matching weights (model.init_weights); "
                          "for CoupleGraph, the DAG whose features it reads (refiner.estimator)")
    fit.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. solver.epochs=2")

    ev = sub.add_parser("eval", help="keypoint AP/AR on data.val")
    ev.add_argument("--config", required=True, help="training YAML whose data.val and eval sections are used")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a checkpoint written by fit (last.pt / best.pt)")
    src.add_argument("--predictions", help="a COCO keypoint results JSON to score instead of a model")
    ev.add_argument("--output", help="folder for results.json and metrics.json (default: beside the weights)")
    ev.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. eval.flip_test=false")

    ep = sub.add_parser("eval-pipeline", help="the yolo pipeline with and without the refiner, held-out split")
    ep.add_argument("--config", required=True, help="a refiner YAML with distill.heldout (configs/train/refiner_*)")
    ep.add_argument("--weights", help="refiner checkpoint (default: distill.ship_to, the shipped weights)")
    ep.add_argument("--output", help="folder for pipeline_eval.json (default: OUTPUT_DIR/eval_pipeline)")
    ep.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    ep.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    eq = sub.add_parser("eval-quality", help="the detector's extra passes and input sizes side by side")
    eq.add_argument("--config", required=True, help="sets, videos and settings (configs/eval/quality.yaml)")
    eq.add_argument("--settings", help="comma-separated names of the config's settings (default: all)")
    eq.add_argument("--output", help="folder for quality_eval.json")
    eq.add_argument("--no-speed", action="store_true", help="skip the cost measurement on the videos")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import commands

    try:
        if args.command == "fit":
            commands.fit(args.config, args.overrides, init=args.init)
        elif args.command == "eval-pipeline":
            commands.eval_pipeline(args.config, args.overrides, weights=args.weights, output=args.output,
                                   speed=not args.no_speed)
        elif args.command == "eval-quality":
            from pathlib import Path

            from .quality_eval import evaluate_quality

            evaluate_quality(args.config, args.settings.split(",") if args.settings else None,
                             speed=not args.no_speed, output=Path(args.output) if args.output else None)
        else:
            commands.evaluate(args.config, args.overrides, weights=args.weights, predictions=args.predictions,
                              output=args.output)
    except OccluposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
