"""Make sure torchvision works with the installed torch; install the CPU shim only if it does not.

PyPI may only offer a CUDA build of torchvision, which fails to load against a CPU-only torch
("operator torchvision::nms does not exist"), and Ultralytics cannot import without it. This
script checks the installed torchvision in a fresh interpreter; if the check fails it replaces it
with compat/torchvision-cpu-shim (pure-PyTorch box ops). A working torchvision is left alone.

Usage: python tools/ensure_torchvision.py [--constraints constraints.txt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIM = ROOT / "compat" / "torchvision-cpu-shim"
PROBE = (
    "import torch, torchvision, torchvision.ops as o;"
    "b = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.]]);"
    "assert o.nms(b, torch.tensor([1., .5]), .5).tolist() == [0];"
    "print(torchvision.__version__, getattr(torchvision, 'IS_OCCLUPOSE_SHIM', False))"
)


def probe() -> tuple[bool, str]:
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    out = (r.stdout or r.stderr).strip().splitlines()
    return r.returncode == 0, (out[-1] if out else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--constraints", default=str(ROOT / "constraints.txt"))
    args = ap.parse_args()
    ok, msg = probe()
    if ok:
        print(f"torchvision works ({msg}); nothing to do")
        return 0
    print(f"torchvision does not work with this torch ({msg}); installing the occlupose CPU shim")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["uninstall", "-y", "-q", "torchvision"], check=False)
    subprocess.run(pip + ["install", "-q", "--no-deps", "-c", args.constraints, str(SHIM)], check=True)
    ok, msg = probe()
    if not ok:
        print(f"error: the torchvision shim does not work either: {msg}", file=sys.stderr)
        return 1
    print(f"torchvision shim installed ({msg})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
