"""Dependencies point one way: ``posecore`` stands alone, ``trackers`` builds on ``posecore``, and what
composes them (``app``, ``train``) sits above both."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the project's top-level packages it may import
ALLOWED = {"posecore": {"posecore"}, "trackers": {"posecore", "trackers"}}
PROJECT = {"app", "posecore", "trackers", "train", "configs"}


def imported_packages(path: Path) -> set[str]:
    """The project's top-level packages a module imports (anywhere in it, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


def test_imported_packages_sees_lazy_imports(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text("import os\nfrom . import x\n\ndef f():\n    from trackers.tracker import Tracker\n    import app.cli\n")
    assert imported_packages(mod) == {"trackers", "app"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_depends_only_on_those_below(package):
    wrong = {str(p.relative_to(ROOT)): sorted(imported_packages(p) - ALLOWED[package])
             for p in sorted((ROOT / package).rglob("*.py"))}
    assert {k: v for k, v in wrong.items() if v} == {}
