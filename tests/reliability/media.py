"""Fixture makers for the reliability tests: small videos with PyAV (any codec, rotation, frame times),
a scripted pipeline without a neural network, sources that fail, and a loopback server that stalls."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from app.run.pipeline import Pipeline
from posecore.errors import SourceError
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.sources import Frame, FrameSource
from posecore.types import Detections
from trackers.tracker import Tracker

K = 17


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """A frame whose content says which frame it is: a bright bar that moves with ``i``, on grey, and
    ``i`` in binary as eight black or white blocks along the top (read back by ``frame_number``)."""
    img = np.full((height, width, 3), 60, np.uint8)
    x = (i * 7) % max(1, width - 8)
    img[height // 4:, x:x + 8] = 230
    bw = width // 8
    for bit in range(8):
        img[: height // 4, bit * bw:(bit + 1) * bw] = 255 if (i >> bit) & 1 else 0
    return img


def frame_number(image: np.ndarray) -> int:
    """The number ``pattern`` wrote into a frame, after any lossy coding (mod 256)."""
    h, w = image.shape[:2]
    bw = w // 8
    row = image[h // 8, :, :].mean(-1)
    return sum(1 << bit for bit in range(8) if row[bit * bw + bw // 4:(bit + 1) * bw - bw // 4].mean() > 128)


def write_video(path: Path, n: int = 12, size: tuple[int, int] = (64, 48), fps: float = 10.0,
                codec: str = "libx264", container: str | None = None, rotation: int | None = None,
                times_ms: Sequence[int] | None = None, frame=pattern) -> Path:
    """Encode ``n`` frames with PyAV. ``rotation`` sets the display matrix (degrees counter-clockwise, as
    phones store it); ``times_ms`` gives each frame's presentation time (variable frame rate)."""
    import av

    w, h = size
    out = av.open(str(path), "w", format=container)
    try:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"bframes": "0", "preset": "ultrafast"}
        if times_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(frame(i, w, h), format="bgr24")
            if times_ms is not None:
                vf.pts, vf.time_base = int(times_ms[i]), Fraction(1, 1000)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    finally:
        out.close()
    return path


def damage_packets(src: Path, dst: Path, packets: Sequence[int], seed: int = 0) -> Path:
    """Copy the video ``src`` to ``dst`` with the payload of the given packets (decode order) replaced by
    noise after their first bytes: the decoder conceals the damage and flags those frames ``is_corrupt``."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        for i, packet in enumerate(p for p in inp.demux(s_in) if p.size):
            if i in packets:
                data = bytes(packet)
                bad = av.Packet(data[:8] + rng.integers(0, 256, len(data) - 8, dtype=np.uint8).tobytes())
                bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                bad.is_keyframe = packet.is_keyframe
                packet = bad
            packet.stream = s_out
            out.mux(packet)
    return dst


# -- a pipeline without a network -----------------------------------------------------------------------

def person(cx: float, cy: float, h: float) -> np.ndarray:
    """float32[17, 3]: a standing person of height ``h`` centred at (cx, cy), every joint confident."""
    ys = np.linspace(cy - h / 2, cy + h / 2, K)
    xs = cx + np.tile([-0.1, 0.1], K)[:K] * h
    return np.stack([xs, ys, np.full(K, 0.9)], 1).astype(np.float32)


def two_walkers(i: int) -> list[tuple[float, float, float]]:
    """Two people of 30 px walking towards each other (cx, cy, height) in frame ``i``."""
    return [(20 + (i % 40) * 0.5, 24, 30), (44 - (i % 40) * 0.5, 24, 30)]


class ScriptedDetector:
    """Stands in for YOLO: returns the people ``people(i)`` gives, where i is the frame number drawn into
    the frame by ``pattern`` (so a replayed or re-decoded frame gets the same people), or, with
    ``by_content=False``, the count of calls so far."""

    thread_safe = False
    device = torch.device("cpu")

    def __init__(self, people=None, by_content: bool = True):
        self.people = people or two_walkers
        self.by_content = by_content
        self.calls = 0
        self.hook = None  # called with i before detecting, for tests that act mid-run

    def detect(self, image: np.ndarray) -> Detections:
        i = frame_number(image) if self.by_content else self.calls
        self.calls += 1
        if self.hook is not None:
            self.hook(i)
        ps = self.people(i)
        if not ps:
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, K, 3)))
        kpts = np.stack([person(*p) for p in ps])
        boxes = np.concatenate([kpts[:, :, :2].min(1), kpts[:, :, :2].max(1)], 1)
        return Detections(boxes, np.full(len(ps), 0.9), kpts)


def scripted_pipeline(people=None, by_content: bool = True) -> Pipeline:
    return Pipeline(ScriptedDetector(people, by_content), YoloPoseEstimator(), Tracker(), prefetch=2)


# -- sources that misbehave -----------------------------------------------------------------------------

class FailingSource(FrameSource):
    """A camera that delivers ``good`` frames and then disappears (raises SourceError)."""

    is_live = True

    def __init__(self, good: int = 5, size: tuple[int, int] = (64, 48), fps: float = 10.0):
        self.name = "camera9"
        self.fps = fps
        self.good = good
        self.size = size
        self.closed = False

    def _frames(self) -> Iterator[Frame]:
        w, h = self.size
        for i in range(self.good):
            yield Frame(i, i / self.fps, pattern(i, w, h))
        raise SourceError("camera 9 stopped delivering frames")

    def close(self) -> None:
        self.closed = True


class ListSource(FrameSource):
    """Frames given as images (any sizes), as a stream that changes resolution would deliver them."""

    def __init__(self, images: Sequence[np.ndarray], fps: float = 10.0, name: str = "list"):
        self.images = list(images)
        self.name = name
        self.fps = fps
        self.frame_count = len(self.images)

    def _frames(self) -> Iterator[Frame]:
        for i, img in enumerate(self.images):
            yield Frame(i, i / self.fps, img)


class FullDisk:
    """A file that accepts ``room`` bytes, writes part of the next write up to that, then fails with ENOSPC,
    as write(2) on a full file system does."""

    def __init__(self, f, room: int):
        self._f, self.room = f, room

    def write(self, data: str) -> int:
        if len(data) > self.room:
            self._f.write(data[: self.room])
            self._f.flush()
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


# -- a loopback HTTP server that stalls -----------------------------------------------------------------

@dataclass
class StallingServer:
    url: str
    connections: int = 0


@contextmanager
def stalling_http_server(body: bytes = b"", content_type: str = "video/mp2t", life_s: float = 20.0):
    """Serve on 127.0.0.1 only: answer every request with a 200 header and ``body``, then send nothing more.

    The server thread ends by itself after ``life_s`` seconds at the latest, and at once when the block
    exits; connections are closed then.
    """
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.1)
    info = StallingServer(f"http://127.0.0.1:{srv.getsockname()[1]}/live.ts")
    stop = threading.Event()
    deadline = time.monotonic() + life_s

    def serve() -> None:
        conns = []
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    conn, _ = srv.accept()
                except (socket.timeout, OSError):
                    continue
                conns.append(conn)
                info.connections += 1
                try:
                    conn.settimeout(2.0)
                    conn.recv(65536)
                    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode() + body)
                except OSError:
                    pass
        finally:
            for c in conns:
                c.close()
            srv.close()

    thread = threading.Thread(target=serve, daemon=True, name="stalling-server")
    thread.start()
    try:
        yield info
    finally:
        stop.set()
        thread.join(timeout=5)
