"""The annotated video's layout is what posecore/io/video_writer.py documents: one MP4 fragment per frame
(so a killed run leaves every frame handed over playable), a keyframe every second."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

from posecore.io.video_writer import VideoWriter


def _top_level_boxes(path: Path) -> list[str]:
    data, out, i = path.read_bytes(), [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
        out.append(kind.decode("latin-1"))
        if size < 8:
            break
        i += size
    return out


def test_one_fragment_per_frame_and_a_keyframe_every_second(tmp_path):
    fps, frames = 10, 25
    path = tmp_path / "out.mp4"
    writer = VideoWriter(path, fps, 64, 48)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.close()
    assert _top_level_boxes(path).count("moof") == frames
    with av.open(str(path)) as c:
        keys = [f.key_frame for f in c.decode(video=0)]
    assert len(keys) == frames
    assert [i for i, k in enumerate(keys) if k] == list(range(0, frames, fps))
