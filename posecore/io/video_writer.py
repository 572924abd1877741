"""Annotated video output with PyAV: H.264 (libx264) when present, else MPEG-4.

The MP4 is fragmented, one fragment per frame (``frag_every_frame``; a keyframe starts every second),
flushed to the file as it is written, and the encoder
works without look-ahead, so even a run that is killed outright (SIGKILL, power loss) leaves a file
that plays up to the last frame handed to the encoder; a normal close finalises it.

Encoding shares the CPU with inference, so it is tuned for speed: x264's ``ultrafast`` preset and
OpenCV's BGR->I420 conversion instead of swscale's. At 1080p that costs about a third of the CPU of
``veryfast`` with swscale, for about a third more bytes at the same CRF, and matches the source more
closely (swscale's default conversion darkens by 1-3 levels); ``tools/encode_cost.py`` measures both.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OutputError


def _pick_codec(preferred: str = "auto") -> str:
    import av

    if preferred != "auto":
        if preferred not in av.codecs_available:
            raise OutputError(f"video codec {preferred!r} is not available in this FFmpeg build")
        return preferred
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _reason(e: BaseException) -> str:
    text = (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()
    return text.splitlines()[0]


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` with its aspect ratio kept, centred on black."""
    import cv2

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - nw) // 2, (height - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


MAX_SIDE = 3840  # 4K UHD: what common players and hardware decoders play; 8K H.264 needs ~1 GiB to encode


class VideoWriter:
    """Write BGR uint8[H, W, 3] frames at a constant ``fps`` (the source's rate).

    Frames larger than ``max_side`` on their longer side are scaled down to fit it: an 8K source gives a
    4K annotated video (results elsewhere keep the source's pixel coordinates).
    """

    def __init__(self, path: str | Path, fps: float | None, width: int, height: int, codec: str = "auto",
                 crf: int = 23, preset: str = "ultrafast", max_side: int = MAX_SIDE):
        import av

        self.path = Path(path)
        self.source_size = (int(width), int(height))
        scale = min(1.0, max_side / max(int(width), int(height), 1))
        self.width, self.height = max(1, round(int(width) * scale)), max(1, round(int(height) * scale))
        # yuv420p needs even sizes: pad by one pixel where needed.
        self._w = self.width + (self.width % 2)
        self._h = self.height + (self.height % 2)
        # Broken metadata can claim any rate; the encoders accept ordinary ones.
        fps = fps if fps and 1.0 <= fps <= 240.0 else 30.0
        rate = Fraction(fps).limit_denominator(1001)
        self.codec = _pick_codec(codec)
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4",
                                      options={"movflags": "frag_every_frame+empty_moov+default_base_moof",
                                               "flush_packets": "1"})
        except Exception as e:
            raise OutputError(f"cannot write video {self.path}: {_reason(e)}") from None
        try:
            stream = self._container.add_stream(self.codec, rate=rate)
            stream.width, stream.height = self._w, self._h
            stream.pix_fmt = "yuv420p"
            stream.gop_size = max(1, round(float(rate)))  # a keyframe every second (fragments: every frame)
            if self.codec == "libx264":
                # zerolatency: no look-ahead or B-frames, so each frame leaves the encoder at once and
                # decode order equals display order (a cut file ends cleanly); it also needs less memory.
                stream.options = {"crf": str(crf), "preset": preset, "tune": "zerolatency"}
            else:
                stream.bit_rate = 4_000_000
                stream.options = {"bf": "0"}
        except Exception as e:
            self._container.close()
            raise OutputError(f"cannot write video {self.path}: {_reason(e)}") from None
        self._stream = stream
        self.frames_written = 0
        self._closed = False

    def write(self, image: np.ndarray) -> None:
        """Encode one frame. A frame of another size (a stream that changes resolution) is scaled to fit
        the video's size, keeping its aspect ratio."""
        import av
        import cv2

        if self._closed:
            raise OutputError(f"cannot write video {self.path}: already closed")
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = _fit(image, self.width, self.height)
        if (self._w, self._h) != (self.width, self.height):
            padded = np.zeros((self._h, self._w, 3), np.uint8)
            padded[: self.height, : self.width] = image
            image = padded
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        frame.pts = self.frames_written
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except Exception as e:  # a full disk, a vanished folder (OSError) or an encoder failure (av errors)
            raise OutputError(f"cannot write video {self.path}: {_reason(e)}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finalise the file; the file handle is released even when that fails."""
        if self._closed:
            return
        self._closed = True
        error = None
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except Exception as e:
            error = e
        try:
            self._container.close()
        except Exception as e:
            error = error or e
        if error is not None:
            raise OutputError(f"cannot write video {self.path}: {_reason(error)}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
