"""The desktop app's ``imgsz: auto``: the input size chosen from the first frame of each source it plays,
by the rule batch runs apply to their first frames (:mod:`posecore.autosize`).

The pipeline is first built at the base size; where the rule needs a pass at the larger size, that pass
runs on a pipeline built at it, which is then the one kept when the rule chooses it (nothing is loaded
twice). Photos of a folder keep the base size, as in batch runs, and so do the ``fast`` quality (as
``--quality fast`` does) and a quality whose passes look at small people already (tiles or a second scale).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from app.run.autosize import single_pass
from posecore.autosize import BASE, SizeChoice, fixed_choice, probe
from posecore.multiscale import preset

from .model_settings import PipelineFactory, PipelineSettings


def size_for_source(settings: PipelineSettings, pipeline: Any, image: np.ndarray, stills: bool,
                    factory: PipelineFactory) -> tuple[SizeChoice, Any, PipelineSettings]:
    """For a source whose first frame is ``image`` (BGR uint8[H, W, 3]), with ``pipeline`` built by
    ``factory`` from ``settings`` at the base size: the size chosen, the pipeline to run at it (``pipeline``
    itself at the base size) and ``settings`` with ``chosen`` set, which describe that pipeline."""
    built: dict[int, tuple[Any, PipelineSettings]] = {}

    def build(size: int) -> tuple[Any, PipelineSettings]:
        if size not in built:
            sized = replace(settings, chosen=size)
            built[size] = (factory(sized), sized)
        return built[size]

    def detector_at(size: int):
        return single_pass(pipeline if size == BASE else build(size)[0])

    if settings.quality == "fast":
        choice = SizeChoice(BASE, "quality fast keeps the base size")
    else:
        choice = fixed_choice(stills, preset(settings.quality)["extra"]) or probe(detector_at, [image])
    if choice.imgsz == BASE:
        return choice, pipeline, replace(settings, chosen=BASE)
    return (choice, *build(choice.imgsz))
