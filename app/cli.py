"""``occlupose`` command line: process, demo, and the benchmarks.

Every failure the user can fix (bad file, bad setting, missing weights) prints one line on stderr
and exits non-zero; no tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import signal
import sys
import warnings
from pathlib import Path

from app.arguments import imgsz_arg, whole_number
from app.run.pipeline import PipelineConfig
from posecore.autosize import BASE
from posecore.config import apply_overrides, dotted_keys, from_dict, load_yaml
from posecore.errors import ConfigError, OccluposeError, one_line
from posecore.multiscale import QUALITY_PRESETS, preset

log = logging.getLogger("occlupose")

# Optional subcommand modules, each with register(subparsers); absent ones are skipped.
EXTRA_COMMANDS = ("app.bench.command", "app.bench.models", "app.bench.soak", "app.bench.mot_eval", "app.export")

PROCESS_DESCRIPTION = """\
Track poses in one source, or in a batch: several sources, a folder holding videos or @list.txt
(one source a line). A batch writes each source into OUTDIR/<name>/ and the manifest OUTDIR/batch.jsonl;
the exit status is 1 when any source failed.

examples:
  occlupose process video.mp4 -o out                     one source, as always
  occlupose process clips/ -o out --jobs 2               every video of clips/, two at once
  occlupose process a.mp4 b.mp4 @more.txt -o out         several sources and a list
  occlupose process clips/ -o out --resume               skip finished sources, resume the others
  occlupose process clips/ -o out --ray                  as tasks of a local Ray instance
  occlupose process @list.txt -o /shared/out --ray auto  on a running Ray cluster (shared filesystem)
"""

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"occlupose: {record.levelname.lower()}: {record.getMessage()}"


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False
    # The one-time note of how long the OpenVINO conversion took is shown unless --quiet.
    logging.getLogger("occlupose.runtime").setLevel(logging.WARNING if quiet and not verbose else logging.INFO)


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds, got {text}")
    return v


positive_int = whole_number(1)


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _non_negative_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return v


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs the pipeline; they override --config."""
    p.add_argument("--config", help="YAML with pipeline settings (see configs/pipeline.yaml)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--imgsz", type=imgsz_arg,
                   help="detector input size, 32-4096, or auto (the default: chosen per source, see README)")
    p.add_argument("--conf", type=float, help="minimum person score (default 0.1)")
    p.add_argument("--pose", choices=["yolo", "dag"], help="pose backend (default yolo)")
    p.add_argument("--weights", help="pose checkpoint for --pose dag")
    p.add_argument("--pair-weights", help="CoupleGraph checkpoint for --pose dag's overlapping pairs "
                                          "(default: the pair stage inside --weights, if any)")
    p.add_argument("--det-weights", help="YOLO detector weights (.pt); default: the bundled yolo11n-pose")
    p.add_argument("--runtime", choices=["auto", "torch", "openvino"],
                   help="where the detector runs (default auto: OpenVINO on CPU when it works)")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"],
                   help="OpenVINO precision (default fp32; int8 after `occlupose export --precision int8`)")
    p.add_argument("--quality", choices=list(QUALITY_PRESETS),
                   help="extra inference passes: fast (one pass, at 640 unless --imgsz is given), balanced (the "
                        "default: with the flip test), best (flip test, zoom-in on small or doubtful people, 2x2 "
                        "tiles); sets passes.*, see README")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. --set tracker.max_lost=60 (repeatable)")


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    return from_dict(PipelineConfig, pipeline_settings(args))


def pipeline_settings(args: argparse.Namespace) -> dict:
    """Only the settings the user gave, as a nested mapping: the --config file, then the flags, then --set."""
    data = apply_overrides(load_yaml(args.config) if args.config else {}, [])  # a copy we may edit
    overrides = list(args.set)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if "=" not in item or not key or "" in key.split("."):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted setting name, e.g. tracker.max_lost=60")
    for flag, key in (("device", "detector.device"), ("imgsz", "detector.imgsz"), ("conf", "detector.conf"),
                      ("pose", "pose.backend"), ("weights", "pose.weights"), ("pair_weights", "pose.pair_weights"),
                      ("det_weights", "detector.weights"),
                      ("runtime", "detector.runtime"), ("precision", "detector.precision")):
        value = getattr(args, flag, None)
        if value is not None:
            _set(data, key, value)
    if getattr(args, "quality", None):
        for key, value in preset(args.quality).items():
            _set(data, f"passes.{key}", value)
        if args.quality == "fast" and "imgsz" not in (data.get("detector") or {}):
            _set(data, "detector.imgsz", BASE)  # fast: the one 640 pass of earlier versions, unless sized
    return apply_overrides(data, overrides)


def _set(data: dict, dotted: str, value) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _run_process(args: argparse.Namespace, source: str, default_outdir: str) -> int:
    from app.process import process_source

    summary = process_source(source, Path(args.output or default_outdir), pipeline_settings(args),
                             video=not args.no_video, resume=args.resume, max_frames=args.max_frames,
                             progress=not args.quiet, stream_timeout_s=args.stream_timeout)
    done = summary.frames - summary.resumed_from
    resumed = f" (resumed at frame {summary.resumed_from})" if summary.resumed_from else ""
    print(f"processed {done} frames{resumed} in {summary.seconds:.1f} s ({summary.fps:.1f} frames/s), "
          f"{summary.track_ids} track IDs")
    if summary.imgsz is not None:
        from app.run.autosize import flip_note

        note = flip_note(pipeline_config(args).passes, summary.imgsz)
        print(f"  input size {summary.imgsz.imgsz} (auto: {summary.imgsz.reason}){note}")
    for kind, path in summary.outputs.items():
        if path.exists():
            print(f"  {kind:9s} {path}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from app.batch import is_batch

    if not is_batch(args.source):
        source = args.source[0]
        return _run_process(args, source, f"outputs/{Path(str(source)).stem or 'run'}")
    return _run_batch(args)


def _run_batch(args: argparse.Namespace) -> int:
    """Several sources: each into OUTDIR/<name>/, with the manifest OUTDIR/batch.jsonl."""
    from app.batch import process_batch

    settings = pipeline_settings(args)
    from_dict(PipelineConfig, settings)  # a bad setting is reported once, before any source starts
    one = args.source[0]
    default = f"outputs/{Path(one).name}" if len(args.source) == 1 and not one.startswith("@") else "outputs/batch"
    runner = None
    if args.ray is not None:
        from app.ray_runner import ray_runner

        # --jobs N with a local instance: room for N sources at once (default: every core).
        local_cpus = args.jobs * math.ceil(args.ray_cpus) if args.jobs > 1 else None
        runner = ray_runner(None if args.ray == "local" else args.ray, cpus=args.ray_cpus, gpus=args.ray_gpus,
                            local_cpus=local_cpus)
    process_batch(args.source, Path(args.output or default), runner, jobs=args.jobs, resume=args.resume,
                  settings=settings, video=not args.no_video, max_frames=args.max_frames,
                  stream_timeout_s=args.stream_timeout,
                  progress=not args.quiet and args.jobs == 1 and runner is None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from posecore.assets import demo_clip

    return _run_process(args, str(demo_clip()), "outputs/demo")


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output folder (default outputs/<source name>)")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated video")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in the same folder")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no notes (e.g. the time of a first "
                                                                  "OpenVINO conversion)")
    p.add_argument("--stream-timeout", type=_positive_seconds, default=10.0, metavar="SECONDS",
                   help="give up on a stream URL that sends nothing for this long (default 10)")
    add_pipeline_arguments(p)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line too (argparse would print the whole usage first)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (usage: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="occlupose", description="Occlusion-robust multi-person pose tracking")
    parser.add_argument("-v", "--verbose", action="store_true", help="more messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("process", help="track poses in a video, camera, stream URL or image folder, or in many",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=PROCESS_DESCRIPTION)
    p.add_argument("source", nargs="+",
                   help="video file, camera index, rtsp/http URL, image folder or image; images are "
                        "unrelated photos, each tracked alone, unless you set stills "
                        "(--set stills=false for a folder of video frames). Several sources, a folder "
                        "holding videos or @list.txt make a batch")
    _add_run_arguments(p)
    b = p.add_argument_group("batches")
    b.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="sources processed at once on this machine, in separate processes that share "
                        "the CPU cores (default 1)")
    b.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the sources as Ray tasks (pip install 'occlupose[cluster]'): alone, a local Ray "
                        "instance; 'auto' or HOST:PORT joins a running cluster, whose nodes must all see "
                        "the sources and OUTDIR at the same paths (a shared filesystem); with --jobs N, the "
                        "local instance runs N sources at once")
    b.add_argument("--ray-cpus", type=_positive_float, default=1.0, metavar="N",
                   help="CPUs Ray reserves per source (default 1)")
    b.add_argument("--ray-gpus", type=_non_negative_float, default=0.0, metavar="N",
                   help="GPUs Ray reserves per source, e.g. 0.5 (default 0)")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("demo", help="process the bundled demo clip (two people hugging)")
    _add_run_arguments(p)
    p.set_defaults(func=cmd_demo)

    for name in EXTRA_COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # not installed
            _register_broken(sub, name, e)
            continue
        except Exception as e:  # a broken optional command must not take `process` down with it
            _register_broken(sub, name, e)
            continue
        module.register(sub)
    return parser


def _register_broken(sub, module: str, error: Exception) -> None:
    """A command whose module fails to import: it says why when used; every other command still works."""
    command = module.rsplit(".", 1)[-1]

    def unavailable(args: argparse.Namespace) -> int:
        raise OccluposeError(f"the {command} command is unavailable: {type(error).__name__}: {one_line(error)}")

    p = sub.add_parser(command, help=f"(unavailable: {type(error).__name__})")
    p.set_defaults(func=unavailable)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C, so every writer closes its file


def run() -> None:
    """The ``occlupose`` program: :func:`main`, then exit with its status. Once the command has finished
    (its outputs closed), Ctrl-C is ignored: the interpreter's shutdown takes a moment, and a late Ctrl-C
    would otherwise turn the command's exit status into a kill or a traceback."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # kept through shutdown, unlike a Python handler
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the commands load: nothing has started
        _say("occlupose: interrupted")
        return EXIT_INTERRUPTED
    _setup_logging(args.verbose, getattr(args, "quiet", False))
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (embedded use)
        previous = None
    try:
        with warnings.catch_warnings():
            # Library warnings (deprecations, numeric notes) would print file names and source lines on
            # stderr; as one line each, shown with --verbose, they keep the one-line contract.
            warnings.showwarning = _log_warning
            return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    log.info("%s: %s", category.__name__, one_line(message))


def _dispatch(args: argparse.Namespace) -> int:
    from app.process import Interrupted

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _say("occlupose: interrupted")
        return EXIT_INTERRUPTED
    except Interrupted as e:
        _say(f"occlupose: interrupted: {one_line(e)}")
        return EXIT_INTERRUPTED
    except OccluposeError as e:
        _say(f"occlupose: error: {one_line(e)}")
        return EXIT_ERROR
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): nothing left to say
        return EXIT_ERROR
    except MemoryError:
        _say("occlupose: error: out of memory; try a smaller --imgsz, fewer frames in flight or a smaller input")
        return EXIT_ERROR
    except Exception as e:  # a bug: one line unless --debug
        if args.debug:
            raise
        _say(f"occlupose: internal error: {type(e).__name__}: {one_line(e)} (rerun with --debug for details)")
        return 3


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed or gone: the exit code still tells
        pass


if __name__ == "__main__":
    sys.exit(main())
