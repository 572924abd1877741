"""Shared checks: the command line's contract for every failure (one line naming the problem, a
non-zero exit, no traceback), run in-process where no real signal or resource limit is involved."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult, run_cli  # noqa: F401  (used by the tests here)


def assert_one_line_error(r: CliResult, *needles: str, prefix: str = "occlupose: error:") -> str:
    """The failure contract; returns the line."""
    assert r.returncode not in (0, None), (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.lines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(prefix), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- one uninterrupted run of the real command's settings over a real shared clip, for exactness checks ---

# A run holds back 12 frames (smoothing lag 1, stitching window 11): with 45 frames, the interrupt tests' 18-20
# written lines come while frames are still being computed, not in the final flush, which a fast machine
# ends before the signal lands.
REAL_FRAMES = 45
REAL_IMGSZ = 320  # a smaller detector input: the same code, faster on a CPU


@pytest.fixture(scope="session")
def real_clip() -> Path:
    from tests.conftest import shared_path

    return shared_path("videos", "mmaction2_demo_skeleton.mp4")  # 1080p, two people who meet and hug


@pytest.fixture(scope="session")
def real_reference(real_clip, tmp_path_factory) -> Path:
    """The uninterrupted run, in this process, with the settings ``real_command`` gives the command line."""
    from app.process import ProcessOptions, run_process
    from app.run.pipeline import Pipeline, PipelineConfig

    out = tmp_path_factory.mktemp("reference")
    cfg = PipelineConfig()
    cfg.detector.imgsz = REAL_IMGSZ
    run_process(ProcessOptions(str(real_clip), out, cfg, max_frames=REAL_FRAMES, progress=False),
                Pipeline.from_config(cfg))
    return out


def real_args(clip: Path, out: Path, *extra: str) -> list[str]:
    """``occlupose`` arguments with the reference run's settings (for ``cli_main`` or ``real_command``)."""
    return ["process", str(clip), "-o", str(out), "-q", "--imgsz", str(REAL_IMGSZ), "--max-frames", str(REAL_FRAMES),
            *extra]


def real_command(clip: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app", *real_args(clip, out, *extra)]


def assert_same_results(out: Path, reference: Path, stem: str, frames: int = REAL_FRAMES) -> None:
    """JSONL, CSV and COCO equal to the reference run's, and a video of every frame."""
    import json

    from posecore.io.result_writers import read_jsonl
    from posecore.io.sources import open_source

    assert list(read_jsonl(out / f"{stem}.jsonl")) == list(read_jsonl(reference / f"{stem}.jsonl"))
    assert (out / f"{stem}.csv").read_bytes() == (reference / f"{stem}.csv").read_bytes()
    assert json.loads((out / f"{stem}.coco.json").read_text()) == json.loads((reference / f"{stem}.coco.json").read_text())
    assert len(list(open_source(str(out / f"{stem}.mp4")))) == frames
