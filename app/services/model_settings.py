"""The model choices a user can change while the app runs, and the factory that builds the pipeline
from them (off the GUI thread)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from posecore.autosize import AUTO
from posecore.errors import ConfigError
from posecore.multiscale import QUALITY_PRESETS, preset

Backend = Literal["yolo", "dag"]
BACKENDS: tuple[str, ...] = ("yolo", "dag")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class PipelineSettings:
    """The model choices a user can change while the app runs."""

    backend: Backend = "yolo"
    weights: str | None = None  # checkpoint of the dag backend
    device: str = "auto"
    imgsz: int | str = AUTO  # "auto": chosen from the first frame of each source (services.auto_size)
    det_weights: str | None = None  # YOLO detector weights; None: the bundled ones
    pair_weights: str | None = None  # dag: CoupleGraph checkpoint; None: the pair stage inside the weights, if any
    quality: str = "balanced"  # the extra inference passes, as --quality (posecore.multiscale)
    chosen: int | None = None  # the size "auto" chose for the source playing (set by the worker, not the user)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"pose backend: expected one of {list(BACKENDS)}, got {self.backend!r}")
        if self.backend == "dag" and not self.weights:
            raise ConfigError("pose backend dag: choose a weights file (checkpoint) first")
        if self.pair_weights and self.backend != "dag":
            raise ConfigError("pair weights: only for the dag backend")
        if self.imgsz != AUTO and (isinstance(self.imgsz, bool) or not isinstance(self.imgsz, int)
                                   or not 32 <= self.imgsz <= 4096):
            raise ConfigError(f"input size: must be auto or between 32 and 4096, got {self.imgsz!r}")
        if self.quality not in QUALITY_PRESETS:
            raise ConfigError(f"quality: expected one of {list(QUALITY_PRESETS)}, got {self.quality!r}")

    def describe(self) -> str:
        model = self.backend if self.backend == "yolo" else f"dag ({Path(self.weights or '').name})"
        if self.backend == "dag" and self.pair_weights:
            model += f" + pairs ({Path(self.pair_weights).name})"
        size = f"{self.chosen} px (auto)" if self.chosen else "auto size" if self.imgsz == AUTO else f"{self.imgsz} px"
        return f"{model} on {self.device}, {size}, {self.quality}"

    def to_config(self):
        from app.run.autosize import sized_config
        from app.run.pipeline import PipelineConfig, PoseConfig
        from posecore.detector import DetectorConfig
        from posecore.multiscale import PassesConfig

        config = PipelineConfig(
            detector=DetectorConfig(weights=self.det_weights, imgsz=self.imgsz, device=self.device),
            pose=PoseConfig(backend=self.backend, weights=self.weights,
                            pair_weights=self.pair_weights if self.backend == "dag" else None),
            passes=PassesConfig(**preset(self.quality)),
        )
        return sized_config(config, self.chosen) if self.chosen else config  # as in batch runs


def cpu_threads_for_inference() -> int:
    """Torch threads on CPU: all cores but one, which the capture thread and the window need.

    When every core runs an OpenMP thread, each parallel region waits for the one the scheduler took
    away for the window or the capture; measured on a busy 2-core machine, a YOLO frame took about
    1 s with 2 threads and 40 ms with 1.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def default_pipeline_factory(settings: PipelineSettings):
    """The real pipeline (imports torch and loads weights: call it off the GUI thread)."""
    import torch

    from app.run.pipeline import Pipeline

    settings.validate()
    pipeline = Pipeline.from_config(settings.to_config())
    if pipeline.detector.device.type == "cpu":
        torch.set_num_threads(min(torch.get_num_threads(), cpu_threads_for_inference()))
    return pipeline


PipelineFactory = Callable[[PipelineSettings], Any]
