"""occlupose CPU compatibility shim for torchvision.

Only ``torchvision.ops`` box operations are provided (pure PyTorch). It exists because the
torchvision wheel on PyPI can be a CUDA build that fails to load against a CPU-only torch.
Install the real torchvision to replace it.
"""

from importlib.metadata import PackageNotFoundError, version

from . import ops

try:
    __version__ = version("torchvision")
except PackageNotFoundError:  # imported from a source tree
    __version__ = "0.28.0+occlupose.cpushim"

IS_OCCLUPOSE_SHIM = True

__all__ = ["ops", "__version__", "IS_OCCLUPOSE_SHIM"]
