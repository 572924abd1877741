"""What encoding the annotated video costs: the writer's settings against x264 ``veryfast`` fed BGR frames
(FFmpeg's own conversion), side by side on the same decoded frames.

Prints CPU milliseconds per frame (the least of three runs), file size and PSNR against the source frames for each, and the
ratios between them.

    .venv/bin/python tools/encode_cost.py posecore/assets/demo/hug.mp4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from posecore.io.sources import open_source
from posecore.io.video_writer import VideoWriter

REPEATS = 3


def _veryfast_bgr(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """x264 ``veryfast`` fed BGR frames, converted by FFmpeg (same container, CRF and tuning as the writer)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w", format="mp4",
                 options={"movflags": "frag_every_frame+empty_moov+default_base_moof"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "tune": "zerolatency"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: h - h % 2, : w - w % 2]), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _writer(path: Path, frames: list[np.ndarray], fps: float) -> None:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, w, h) as writer:
        for image in frames:
            writer.write(image)


def _psnr(path: Path, frames: list[np.ndarray]) -> float:
    values = []
    for source, decoded in zip(frames, (f.image for f in open_source(str(path)))):
        h, w = decoded.shape[:2]
        mse = float(((decoded.astype(np.float64) - source[:h, :w]) ** 2).mean())
        values.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))
    return float(np.mean(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    args = parser.parse_args()
    source = open_source(args.video)
    frames = [f.image for f in source]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, encode in (("writer (ultrafast, OpenCV I420)", _writer), ("veryfast, FFmpeg BGR conversion", _veryfast_bgr)):
            path = Path(tmp) / f"{len(rows)}.mp4"
            cpu_ms = float("inf")
            for _ in range(REPEATS):  # the least of a few: start-up and other work on the machine only add
                c0 = time.process_time()
                encode(path, frames, source.fps or 30.0)
                cpu_ms = min(cpu_ms, (time.process_time() - c0) / len(frames) * 1e3)
            rows[name] = (cpu_ms, path.stat().st_size, _psnr(path, frames))
    h, w = frames[0].shape[:2]
    print(f"{args.video}: {len(frames)} frames of {w}x{h}")
    for name, (ms, size, psnr) in rows.items():
        print(f"  {name:34s} {ms:6.1f} ms CPU/frame  {size / 1e6:6.2f} MB  PSNR {psnr:5.2f} dB")
    (a_ms, a_size, _), (b_ms, b_size, _) = rows.values()
    print(f"  writer / veryfast: CPU {a_ms / b_ms:.2f}x, size {a_size / b_size:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
