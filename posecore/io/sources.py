"""Frame sources: video files, webcams, stream URLs and image folders, behind one iterator interface.

``open_source(spec)`` picks the source from the spec: an integer (or digit string) is a camera index,
``scheme://...`` a stream, a directory an image folder, an image file a one-frame folder, any other
file a video. Each yields :class:`Frame` records in order; unreadable input raises ``SourceError``
with one line naming the problem.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np

from ..errors import SourceError

log = logging.getLogger("occlupose")

# OpenCV's FFmpeg backend prints decoder chatter on stderr; we report problems ourselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Frame:
    """One decoded frame. image: uint8[H, W, 3] BGR; time_s: presentation time in seconds."""

    index: int
    time_s: float
    image: np.ndarray
    name: str | None = None  # the file name, for image-folder sources


class FrameSource:
    """Base class. Subclasses set the attributes and implement ``_frames``."""

    name: str = ""
    fps: float | None = None  # nominal rate; None when unknown
    frame_count: int | None = None  # None when unknown (live sources, some containers)
    is_live: bool = False
    # What the source could not deliver, for the run's report (set while iterating): why a video's
    # frames ended early or were left out, and the unreadable images of a folder with the reason for each.
    damage: str | None = None
    skipped: Sequence[str] = ()
    skip_reasons: Mapping[str, str] = MappingProxyType({})

    def __iter__(self) -> Iterator[Frame]:
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(e: BaseException) -> str:
    # FFmpeg errors carry a clean reason in strerror; str() adds the errno and the path again.
    text = (getattr(e, "strerror", None) or str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log while it probes a file or device: we report problems in one line ourselves."""
    from cv2.utils import logging as cvlog

    level = cvlog.getLogLevel()
    cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cvlog.setLogLevel(level)


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV (FFmpeg), falling back to OpenCV when PyAV cannot open it.

    Rotation metadata (phone videos) is applied so frames come out upright. A file that breaks off
    mid-way yields the frames before the damage, then sets ``damage`` to a one-line description (a
    decoding error, or fewer frames than the container declares); a file with no decodable frame
    raises ``SourceError``.
    """

    damage: str | None = None

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.exists():
            raise SourceError(f"no such file: {self.path}")
        if not self.path.is_file():
            raise SourceError(f"not a file: {self.path}")
        if self.path.stat().st_size == 0:
            raise SourceError(f"empty file: {self.path}")
        self._backend = "pyav"
        try:
            self._open_pyav()
        except SourceError as pyav_error:
            if not self._open_opencv():
                raise pyav_error
            self._backend = "opencv"

    def _open_pyav(self) -> None:
        import av

        try:
            container = av.open(str(self.path))
        except av.error.EOFError:  # a container with streams but not a single packet
            raise SourceError(f"video has no frames: {self.path}") from None
        except Exception as e:  # av.error.InvalidDataError and friends
            raise SourceError(f"cannot read video {self.path}: {_first_line(e)}") from None
        try:
            if not container.streams.video:
                raise SourceError(f"no video stream in {self.path}")
            stream = container.streams.video[0]
            if stream.codec_context is None:  # FFmpeg reads the container but has no decoder for the stream
                raise SourceError(f"cannot decode video {self.path}: unsupported codec or damaged stream header "
                                  "(no decoder for it in this FFmpeg build)")
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else None
            self.frame_count = int(stream.frames) or None
            self._declared_frames = self.frame_count  # exact when the container counts its frames
            if stream.duration and stream.time_base:
                self._declared_s = float(stream.duration * stream.time_base)
            else:
                self._declared_s = container.duration / 1e6 if container.duration else None
            if self.frame_count is None and container.duration and self.fps:
                self.frame_count = int(round(container.duration / 1e6 * self.fps)) or None
            self.codec = stream.codec_context.name
        except SourceError:
            container.close()
            raise
        except Exception as e:
            container.close()
            raise SourceError(f"cannot read video {self.path}: {_first_line(e)}") from None
        container.close()  # reopened per iteration, so a source can be read more than once

    def _open_opencv(self) -> bool:
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                return False
            with _quiet_opencv():
                ok, _ = cap.read()
            if not ok:
                return False
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else None
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.frame_count = n if n > 0 else None
            self.codec = "opencv"
            return True
        finally:
            cap.release()

    def _frames(self) -> Iterator[Frame]:
        return self._frames_pyav() if self._backend == "pyav" else self._frames_opencv()

    def _frames_pyav(self) -> Iterator[Frame]:
        import av

        self.damage = None
        try:
            container = av.open(str(self.path))
        except Exception as e:  # the file changed or went away since it was opened
            raise SourceError(f"cannot read video {self.path}: {_first_line(e)}") from None
        index = corrupt = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame/slice threads: decoding keeps up with inference
            decoder = container.decode(stream)
            # Times count from the stream's start: many files (edited or fragmented) start later than 0.
            start = stream.start_time or 0
            tb = float(stream.time_base) if stream.time_base else None
            while True:
                try:
                    vf = next(decoder)
                except StopIteration:
                    break
                except Exception as e:
                    if index == 0:
                        raise SourceError(f"cannot decode video {self.path}: {_first_line(e)}") from None
                    self.damage = f"video {self.path} is damaged after frame {index - 1} ({_first_line(e)})"
                    log.info("%s; stopping there", self.damage)
                    break
                if getattr(vf, "is_corrupt", False):  # decoded with errors (concealed): grey smears, not people
                    corrupt += 1
                    continue
                image = vf.to_ndarray(format="bgr24")
                k = int(round((getattr(vf, "rotation", 0) or 0) / 90.0)) % 4
                if k:
                    # The display matrix angle is counter-clockwise, as np.rot90 turns.
                    image = np.ascontiguousarray(np.rot90(image, k))
                if vf.pts is not None and tb:
                    t = (vf.pts - start) * tb
                else:
                    t = index / (self.fps or 30.0)
                yield Frame(index, t, image)
                index += 1
        finally:
            container.close()
        if index == 0:
            if corrupt:
                raise SourceError(f"cannot decode video {self.path}: all {corrupt} frames are damaged")
            raise SourceError(f"video has no frames: {self.path}")
        declared = getattr(self, "_declared_frames", None)
        declared_s = getattr(self, "_declared_s", None)
        if self.damage is None and declared and index + corrupt < declared:
            self.damage = f"video {self.path} ends after {index} of its {declared} frames (truncated)"
        elif self.damage is None and not declared and declared_s and self.fps:
            # Containers without a frame count (fragmented MP4, Matroska): compare times, with room for a
            # long last frame of a variable-rate video.
            if declared_s - t > 0.5 + 2.0 / self.fps:
                self.damage = f"video {self.path} ends at {t:.2f} s of its {declared_s:.2f} s (truncated)"
        if corrupt and self.damage is None:
            self.damage = f"video {self.path} has {corrupt} damaged frame(s), left out"
        if self.damage:
            log.info("%s", self.damage)

    def _frames_opencv(self, start: int = 0) -> Iterator[Frame]:
        """The frames from ``start`` on (OpenCV seeks by frame number)."""
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path))
            if start:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        try:
            while True:
                with _quiet_opencv():
                    ok, image = cap.read()
                if not ok:
                    break
                yield Frame(index, index / (self.fps or 30.0), image)
                index += 1
        finally:
            cap.release()
        if index == 0:  # (a seek past the end just ends)
            raise SourceError(f"video has no frames: {self.path}")


class _SharedHandle:
    """A device or network handle read in one thread (the prefetcher) and closed from another.

    ``close()`` never releases it in the middle of a read, where FFmpeg or V4L2 would crash; if a read
    is stuck (bounded by the source's own timeout), the reader releases it on its way out instead.
    """

    def __init__(self, release) -> None:
        self._release = release
        self.lock = threading.Lock()  # held for each read
        self.closing = False
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def close(self, wait_s: float = 0.5) -> None:
        self.closing = True
        if self.lock.acquire(timeout=wait_s):
            try:
                self.release()
            finally:
                self.lock.release()

    def reader_done(self) -> None:
        """Called by the reader when it stops: release now if close() could not."""
        if self.closing:
            with self.lock:
                self.release()


class CameraSource(FrameSource):
    """A local camera by index (OpenCV). A camera that stops delivering frames raises ``SourceError``."""

    is_live = True

    def __init__(self, index: int, width: int | None = None, height: int | None = None):
        self.index = int(index)
        self.name = f"camera{self.index}"
        if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{self.index}"):
            raise SourceError(f"no camera at index {self.index}")
        with _quiet_opencv():  # a failing open prints many warnings; we say it in one line
            self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"no camera at index {self.index}")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._handle = _SharedHandle(self._cap.release)

    def _frames(self) -> Iterator[Frame]:
        import time

        start = time.monotonic()
        index = 0
        try:
            while True:
                with self._handle.lock:
                    if self._handle.closing or not self._cap.isOpened():
                        return
                    with _quiet_opencv():  # an unplugged camera makes V4L2 print warnings before read() fails
                        ok, image = self._cap.read()
                if not ok:
                    raise SourceError(f"camera {self.index} stopped delivering frames after {index} frames")
                yield Frame(index, time.monotonic() - start, image)
                index += 1
        finally:
            self._handle.reader_done()

    def close(self) -> None:
        self._handle.close()


class StreamSource(FrameSource):
    """A network stream (rtsp://, http(s)://, udp://, ...) read with PyAV under bounded timeouts."""

    is_live = True

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url
        self.name = url
        self.timeout_s = float(timeout_s)
        self._container = self._open()
        self._handle = _SharedHandle(self._container.close)
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None

    def _open(self):
        import av

        options = {"rw_timeout": str(int(self.timeout_s * 1e6))}  # microseconds; bounds every read
        if self.url.startswith("rtsp"):
            options["rtsp_transport"] = "tcp"
        try:
            container = av.open(self.url, options=options, timeout=(self.timeout_s, self.timeout_s))
        except Exception as e:
            raise SourceError(f"cannot open stream {self.url}: {self._reason(e)}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"no video stream at {self.url}")
        return container

    def _frames(self) -> Iterator[Frame]:
        index = 0
        stream = self._container.streams.video[0]
        t0 = None
        try:
            decoder = self._container.decode(stream)
            while True:
                with self._handle.lock:
                    if self._handle.closing:
                        return
                    try:
                        vf = next(decoder)
                    except StopIteration:
                        return
                    except Exception as e:
                        raise SourceError(f"stream {self.url} stopped after {index} frames: {self._reason(e)}") from None
                    image = vf.to_ndarray(format="bgr24")
                t = float(vf.time) if vf.time is not None else 0.0
                t0 = t if t0 is None else t0
                yield Frame(index, t - t0, image)
                index += 1
        finally:
            self._handle.reader_done()

    def _reason(self, e: BaseException) -> str:
        # PyAV's timeout interrupts FFmpeg, which then reports "Immediate exit requested" (AVERROR_EXIT).
        text = _first_line(e)
        if "Immediate exit requested" in text or getattr(e, "errno", None) == errno.ETIMEDOUT:
            return f"no data for {self.timeout_s:g} s (timed out)"
        return text

    def close(self) -> None:
        self._handle.close()


def natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _is_image_file(path: Path) -> bool:
    """Whether the file starts like an image OpenCV reads (by content, not by its name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return (head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"))


def _jpeg_damage(data: bytes) -> str | None:
    """Walk the JPEG's markers to its end-of-image marker; a file cut short never gets there."""
    pos = 2
    n = len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            return "damaged JPEG (bad marker)"
        marker = data[pos + 1]
        if marker == 0xD9:
            return None
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte or a marker without length
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > n:
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker that is not FF00 / RSTn
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return "truncated JPEG"
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    return "truncated JPEG"


def _png_damage(data: bytes) -> str | None:
    """Walk the PNG's chunks to IEND; a file cut short never gets there."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IEND":
            return None
        pos += 12 + length
    return "truncated PNG"


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """(BGR image, "") or (None, why it cannot be used). Damaged JPEG and PNG files are caught before the
    decoder sees them: libjpeg would return a half-grey picture and both libraries print on stderr."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, e.strerror or str(e)
    if not data:
        return None, "empty file"
    damage = None
    if data.startswith(b"\xff\xd8\xff"):
        damage = _jpeg_damage(data)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        damage = _png_damage(data)
    if damage:
        return None, damage
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "not a readable image"
    return image, ""


class ImageFolderSource(FrameSource):
    """Images of a folder in natural name order (or one image file). Unreadable images are skipped
    and reported; ``skipped`` lists their names, ``skip_reasons`` why each was skipped."""

    def __init__(self, path: str | Path, fps: float | None = None):
        self.path = Path(path)
        self.name = self.path.name
        if self.path.is_file():
            self.files = [self.path]
        else:
            try:
                entries = list(self.path.iterdir())
            except OSError as e:
                raise SourceError(f"cannot read folder {self.path}: {e.strerror or e}") from None
            self.files = sorted((p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                                key=natural_key)
        if not self.files:
            raise SourceError(f"no images in folder: {self.path}")
        self.fps = fps
        self.frame_count = len(self.files)
        self.skipped: list[str] = []
        self.skip_reasons: dict[str, str] = {}

    def _frames(self) -> Iterator[Frame]:
        self.skipped, self.skip_reasons = [], {}
        index = 0
        for p in self.files:
            image, why = read_image(p)
            if image is None:
                self.skipped.append(p.name)
                self.skip_reasons[p.name] = why
                log.info("skipping image %s: %s", p.name, why)  # the consumer reports them together
                continue
            yield Frame(index, index / self.fps if self.fps else float(index), image, p.name)
            index += 1
        if index == 0:
            raise SourceError(f"no readable images in {self.path}")


def open_source(spec: str | int | os.PathLike, timeout_s: float = 10.0) -> FrameSource:
    """Open a camera index, stream URL, image folder, image file or video file."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec))
    text = os.fspath(spec)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        return StreamSource(text, timeout_s=timeout_s)
    p = Path(text)
    if p.is_dir():
        return ImageFolderSource(p)
    if not p.exists():
        raise SourceError(f"no such file or directory: {p}")
    if p.suffix.lower() in IMAGE_EXTENSIONS and (_is_image_file(p) or not p.is_file()):
        return ImageFolderSource(p)
    # Anything else is given to FFmpeg, which goes by content: a video named .jpg or .dat still plays.
    return VideoFileSource(p)
