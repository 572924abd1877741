"""Nothing we ship or run at install time writes Ultralytics' own settings folder (~/.config/Ultralytics):
every import of Ultralytics goes through posecore.ultralytics_env, which points it at our folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_in_fresh_home(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CONFIG_HOME", "YOLO_CONFIG_DIR", "YOLO_OFFLINE", "YOLO_VERBOSE", "YOLO_AUTOINSTALL")}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


@pytest.mark.parametrize("code", [
    "from app.bench.command import _machine; _machine()",
    "from app.bench.tracker_adapters import UltralyticsTracker; UltralyticsTracker('bytetrack.yaml')",
])
def test_benchmark_imports_of_ultralytics_leave_its_settings_folder_alone(tmp_path, code):
    r = _run_in_fresh_home(tmp_path, "-c", code)
    assert r.returncode == 0, r.stderr.strip().splitlines()[-1:]
    assert not (tmp_path / ".config" / "Ultralytics").exists()


def test_the_install_probe_leaves_it_alone(tmp_path):
    r = _run_in_fresh_home(tmp_path, "tools/ensure_torchvision.py")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / ".config" / "Ultralytics").exists()
