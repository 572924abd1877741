"""Benchmark contenders per runtime: Ultralytics ``YOLO.track`` on Ultralytics' own OpenVINO export of the
same weights (what its documentation tells a user who wants CPU speed), and occlupose per runtime and
precision (``--runtimes torch openvino openvino:int8``).

Ultralytics' export is made once, offline, by ``YOLO(weights).export(format="openvino", imgsz=...)`` on a copy
of the weights inside occlupose's cache folder (keyed like occlupose's own IR), and reused by later runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from dataclasses import replace
from pathlib import Path

from posecore.errors import ConfigError
from app.run.pipeline import PipelineConfig
from posecore.runtime import PRECISIONS, cache

ULTRALYTICS_OPENVINO = {"bytetrack_openvino": ("bytetrack.yaml", "Ultralytics track, ByteTrack, OpenVINO"),
                        "botsort_openvino": ("botsort.yaml", "Ultralytics track, BoT-SORT, OpenVINO")}


def ultralytics_openvino_export(weights: Path, imgsz: int) -> Path:
    """The folder of Ultralytics' OpenVINO export of ``weights`` at ``imgsz`` (made now unless cached)."""
    import openvino as ov
    import ultralytics

    weights = Path(weights)
    versions = f"ultralytics-{ultralytics.__version__}-openvino-{ov.get_version()}"
    key = f"{cache.file_sha256(weights)[:12]}-{imgsz}-{hashlib.sha256(versions.encode()).hexdigest()[:12]}"
    folder = cache.cache_root() / "ultralytics" / key
    exported = folder / f"{weights.stem}_openvino_model"
    if (exported / f"{weights.stem}.xml").is_file() and (exported / f"{weights.stem}.bin").is_file():
        return exported
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    copy = folder / weights.name
    shutil.copyfile(weights, copy)
    from posecore.detector import load_yolo

    from posecore.runtime.export import no_telemetry

    with contextlib.redirect_stdout(io.StringIO()), no_telemetry():
        out = load_yolo(copy).export(format="openvino", imgsz=imgsz, device="cpu", verbose=False)
    copy.unlink(missing_ok=True)
    return Path(out)


def load_ultralytics_openvino(weights: Path, imgsz: int):
    from posecore.ultralytics_env import import_ultralytics

    with contextlib.redirect_stdout(io.StringIO()):
        return import_ultralytics().YOLO(str(ultralytics_openvino_export(weights, imgsz)), task="pose")


def parse_variant(text: str) -> tuple[str, str]:
    """'torch', 'openvino' or 'openvino:PRECISION' -> (runtime, precision)."""
    runtime, _, precision = text.partition(":")
    precision = precision or "fp32"
    if runtime not in ("torch", "openvino") or precision not in PRECISIONS or (runtime == "torch" and precision != "fp32"):
        raise ConfigError(f"--runtimes {text!r}: expected torch, openvino or openvino:fp32|bf16|int8")
    return runtime, precision


def variant_name(runtime: str, precision: str) -> str:
    return f"occlupose_{runtime}" + (f"_{precision}" if runtime == "openvino" and precision != "fp32" else "")


def variant_config(cfg: PipelineConfig, runtime: str, precision: str) -> PipelineConfig:
    return replace(cfg, detector=replace(cfg.detector, runtime=runtime, precision=precision))
