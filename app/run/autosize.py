"""The pipeline for one source, with ``detector.imgsz: auto`` resolved on its first frames
(:mod:`posecore.autosize`): those frames are read ahead, measured and then handed on, so nothing is decoded
twice and live sources work too."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace

from posecore.autosize import AUTO, BASE, PROBE_FRAMES, SizeChoice, fixed_choice, probe
from posecore.detector import Detector
from posecore.io.sources import Frame
from posecore.multiscale import PassesConfig

from .pipeline import Pipeline, PipelineConfig

log = logging.getLogger("occlupose")


def with_imgsz(config: PipelineConfig, imgsz: int) -> PipelineConfig:
    return replace(config, detector=replace(config.detector, imgsz=imgsz))


def sized_config(config: PipelineConfig, imgsz: int) -> PipelineConfig:
    """``config`` at the input size ``auto`` chose. Above the base, ``flip: auto`` is off: the larger input
    costs as much as the mirrored pass would."""
    return replace(with_imgsz(config, imgsz), passes=config.passes.for_auto_size(imgsz))


def flip_note(passes: PassesConfig, choice: SizeChoice) -> str:
    """What the log and the summary add to the chosen size where it turned the flip test off."""
    return "; flip test off at this size" if passes.for_auto_size(choice.imgsz).flips != passes.flips else ""


def pipeline_for_source(config: PipelineConfig, frames: Iterable[Frame], recorded: SizeChoice | None = None
                        ) -> tuple[Pipeline, Iterator[Frame], SizeChoice | None]:
    """The pipeline for ``config`` and the source's ``frames`` (to be used instead of ``frames``), and the
    input size chosen when ``config`` says ``auto`` (else None). ``recorded``: the choice an earlier run of
    this source made, kept as it is (a resume)."""
    frames = iter(frames)
    if config.detector.imgsz != AUTO:
        return Pipeline.from_config(config), frames, None
    choice = recorded or fixed_choice(config.stills, config.passes.extra)
    pipeline = None
    if choice is None:
        head = list(itertools.islice(frames, PROBE_FRAMES))
        frames = itertools.chain(head, frames)
        pipeline = Pipeline.from_config(with_imgsz(config, BASE))
        choice = probe(lambda size: _detect_at(pipeline, config, size), [f.image for f in head])
    again = ", as the earlier run chose" if choice is recorded else ""
    log.info("input size %d (auto%s: %s)%s", choice.imgsz, again, choice.reason, flip_note(config.passes, choice))
    if pipeline is None or choice.imgsz != BASE:
        pipeline = Pipeline.from_config(sized_config(config, choice.imgsz))
    return pipeline, frames, choice


def single_pass(pipeline: Pipeline):
    """The detect function of ``pipeline``'s detector without its extra passes: the rule reads one plain pass."""
    return getattr(pipeline.detector, "base", pipeline.detector).detect


def _detect_at(pipeline: Pipeline, config: PipelineConfig, size: int):
    """A single-pass detect function at ``size``: the pipeline's own at the base size, a new one otherwise."""
    if size == BASE:
        return single_pass(pipeline)
    return Detector.from_config(replace(config.detector, imgsz=size)).detect
