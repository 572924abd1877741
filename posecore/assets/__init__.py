"""Files shipped inside the package (the demo clip)."""

from importlib.resources import files
from pathlib import Path


def demo_clip() -> Path:
    """The bundled demo video (see assets/demo/NOTICE.md for its licence)."""
    return Path(str(files(__name__) / "demo" / "hug.mp4"))
