"""The YAML configurations shipped with occlupose; :func:`path` finds one by relative name."""

from importlib.resources import files
from pathlib import Path


def path(name: str) -> Path:
    """Path of a bundled config, e.g. ``path("pipeline.yaml")`` or ``path("models/dag_w32_coco.yaml")``."""
    p = Path(str(files(__name__) / name))
    if not p.is_file():
        raise FileNotFoundError(f"no bundled config {name!r}")
    return p
