"""Shared fixtures: where the real test data lives, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("OCCLUPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under the shared real data; skips the test when it is not there."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p


def run_cli(*args, timeout: float = 300, preexec_fn=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real ``occlupose`` command in a subprocess (for exit codes, signals and resource limits)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=full_env, preexec_fn=preexec_fn)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


@pytest.fixture
def cli_main(capfd):
    """Run ``occlupose ARGS`` in this process; returns a CliResult. Output is captured at the file
    descriptors, so whatever a C library prints on stderr counts against the one-line contract too.
    Seconds cheaper than ``run_cli``: no new interpreter importing torch and Ultralytics."""
    from app import cli

    def run(*args) -> CliResult:
        capfd.readouterr()
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            code = e.code
        out = capfd.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def demo_clip() -> Path:
    from posecore.assets import demo_clip

    return demo_clip()


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Ultralytics sets torch's thread count when it builds a predictor; no test may pass that on."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session", autouse=True)
def _openvino_cache(tmp_path_factory):
    """Converted OpenVINO models go to one folder per test session, never the user's cache: a session
    converts the bundled weights at most once and every test after reuses it."""
    from posecore.runtime.cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("openvino-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before
