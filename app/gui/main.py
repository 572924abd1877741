"""Entry point of ``occlupose-gui [SOURCE]``: a window to watch tracked skeletons live.

SOURCE is a camera index, a video file, an image folder or a stream URL, opened at start. Model
flags given here override the choices remembered from the last run (and are remembered in turn).
"""

from __future__ import annotations

import argparse
import signal
import sys

from app.arguments import imgsz_arg
from app.gui.qt_env import use_pyqt_plugins
from posecore.multiscale import QUALITY_PRESETS

SETTINGS_ORG = "occlupose"
SETTINGS_APP = "occlupose-gui"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="occlupose-gui", description="Watch tracked skeletons live")
    p.add_argument("source", nargs="?", help="camera index, video file, image folder or rtsp/http URL")
    p.add_argument("--pose", choices=["yolo", "dag"], help="pose backend")
    p.add_argument("--weights", help="checkpoint for --pose dag")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--imgsz", type=imgsz_arg,
                   help="detector input size: auto (chosen from each source's first frame) or pixels (32-4096)")
    p.add_argument("--quality", choices=list(QUALITY_PRESETS),
                   help="extra inference passes, as `occlupose process --quality` (default balanced)")
    p.add_argument("--realtime", action="store_true", default=None,
                   help="play files at their own rate, skipping frames when processing is slower")
    p.add_argument("--settings", metavar="INI", help="read and save settings in this INI file instead of "
                                                      "the user's default place")
    return p


def overrides_from_args(args: argparse.Namespace) -> dict:
    out = {}
    for flag, key in (("pose", "backend"), ("weights", "weights"), ("device", "device"), ("imgsz", "imgsz"),
                      ("quality", "quality"), ("realtime", "realtime")):
        value = getattr(args, flag, None)
        if value is not None:
            out[key] = value
    return out


def create_window(args: argparse.Namespace, service=None, qsettings=None):
    """The main window with its worker service running (a QApplication must exist)."""
    from PyQt6.QtCore import QSettings

    from app.gui.main_window import MainWindow
    from app.services.qt_service import WorkerService

    if qsettings is None:
        qsettings = (QSettings(args.settings, QSettings.Format.IniFormat) if args.settings
                     else QSettings(SETTINGS_ORG, SETTINGS_APP))
    return MainWindow(service or WorkerService(), qsettings, args.source, overrides_from_args(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_pyqt_plugins()  # before the QApplication: see qt_env
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName(SETTINGS_APP)
    app.setOrganizationName(SETTINGS_ORG)
    window = create_window(args)
    window.show()
    # Ctrl-C in the terminal closes the window (and so stops the worker cleanly). Python runs signal
    # handlers only between bytecodes, so a timer gives it a chance while Qt's loop is waiting.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
