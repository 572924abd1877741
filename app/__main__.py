"""``python -m app``: the ``occlupose`` command (:func:`app.cli.run`)."""

import sys

try:
    from app.cli import run
except KeyboardInterrupt:  # Ctrl-C while the program loads: nothing has started
    sys.stderr.write("occlupose: interrupted\n")
    sys.exit(130)

run()
