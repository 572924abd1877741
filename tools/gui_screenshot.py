"""Screenshot of the occlupose-gui window playing a clip, for the README.

Needs a display; on a machine without one, run it under a virtual X server:

    xvfb-run -a -s "-screen 0 1440x900x24" .venv/bin/python tools/gui_screenshot.py -o docs/screenshot_gui.png

It opens the clip with the real pipeline, plays it up to --frame, pauses, grabs the window from the
screen and checks that skeletons were drawn (exit status 1 if not). Settings are kept in a temporary
file, never in the user's own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from app.gui.qt_env import use_pyqt_plugins


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="docs/screenshot_gui.png", help="PNG to write")
    p.add_argument("--source", help="video to play (default: the bundled demo clip)")
    p.add_argument("--frame", type=int, default=45, help="pause at this frame")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="1400x820", help="window size WxH")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    use_pyqt_plugins()  # cv2's Qt 5 plugins would break the xcb platform: see app/gui/qt_env.py
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.gui.event_loop import spin_until as spin
    from app.gui.main_window import MainWindow
    from app.services.qt_service import WorkerService
    from app.services.player import Status
    from posecore.assets import demo_clip

    app = QApplication(sys.argv[:1])
    source = args.source or str(demo_clip())
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        qs = QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat)
        qs.setValue("imgsz", args.imgsz)
        qs.setValue("device", args.device)
        qs.setValue("boxes", True)
        window = MainWindow(WorkerService(camera_probe=list), qs)
        window.resize(width, height)
        window.show()
        errors: list[str] = []
        window.service.errorOccurred.connect(lambda kind, msg: errors.append(msg))

        window.open_source(source)
        reached = spin(lambda: errors or window.state.status == Status.ENDED
                       or (window.view.frame is not None and window.view.frame.index >= args.frame), args.timeout)
        window.service.pause()
        spin(lambda: window.state.status in (Status.PAUSED, Status.ENDED), 30)
        window.tabs.setCurrentWidget(window.tabs.widget(1))  # the overlay toggles make a better picture
        spin(lambda: False, 1.0)  # let the last frame, the stats and the track list paint
        window.service._emit_stats()
        spin(lambda: False, 0.3)

        frame = window.view.frame
        if errors or not reached or frame is None:
            print(f"gui_screenshot: no frame to show: {errors[-1] if errors else 'timed out'}", file=sys.stderr)
            window.close()
            return 1
        shot = window.screen().grabWindow(int(window.winId()))  # what the display shows
        if shot.isNull() or shot.width() < 10:
            shot = window.grab()  # a platform that cannot read its screen back
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = shot.save(str(out), "PNG")
        people = len([t for t in frame.result.tracks if t.is_matched])
        print(f"{out}: {shot.width()}x{shot.height()}, platform {app.platformName()}, frame {frame.index}, "
              f"{people} skeletons")
        window.close()
        if not ok:
            print(f"gui_screenshot: cannot write {out}", file=sys.stderr)
            return 1
        return 0 if people > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
