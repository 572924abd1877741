"""Entry point of ``occlupose-gui``."""

import sys


def main() -> int:
    print("occlupose-gui: the desktop app is not built yet; use `occlupose process SOURCE`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
