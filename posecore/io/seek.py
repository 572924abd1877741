"""Random access into a video file: the frames from any index on, for players that seek and step.

Frame ``i`` here is the same image as the ``i``-th frame :class:`VideoFileSource` yields, which leaves
out frames decoded with errors (``is_corrupt``). With PyAV, the presentation timestamps of the frames it
yields map an index to a timestamp; a seek jumps to the keyframe before it and decodes forward. The
timestamps are found by decoding without converting colours (only decoding tells a damaged frame from a
good one, and counting packets would shift every index after it), lazily: only as far as the furthest
seek so far, so a seek near the start of a long video does not wait for the whole file. Files whose timestamps cannot be
trusted (missing, duplicated, or out of order after decoding, as in some AVI files) are decoded from the
start instead, skipping the colour conversion of the frames before the target. The OpenCV fallback
seeks by frame number.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import SourceError
from .sources import Frame, VideoFileSource, _first_line

class SeekableVideo:
    """A video file readable from any frame. ``frames(start)`` yields :class:`Frame` records in order."""

    def __init__(self, video: str | Path | VideoFileSource):
        # An opened VideoFileSource is reused as it is: the file was validated and probed already.
        self.source = video if isinstance(video, VideoFileSource) else VideoFileSource(video)
        self.path = self.source.path
        self.name = self.source.name
        self.fps = self.source.fps
        self.frame_count = self.source.frame_count
        self._pts: list[int] = []  # timestamps of the frames scanned so far, in playback order
        self._untrusted = False  # timestamps missing or out of order: seeks decode from the start
        self._scan = None  # (container, decoder) of the lazy scan while it has not reached the end

    def frames(self, start: int = 0) -> Iterator[Frame]:
        start = max(0, int(start))
        if start == 0:
            return iter(self.source)
        if self.source._backend == "opencv":
            return self.source._frames_opencv(start)
        return self._frames_pyav(start)

    # ------------------------------------------------------------------ PyAV
    def _timestamps(self, upto: int) -> list[int] | None:
        """Timestamps of the frames playback yields, in order, at least up to frame ``upto`` (all of them
        where the file ends or breaks off before it, as playback stops at damage), or None when they
        cannot index frames."""
        if self._untrusted:
            return None
        if self._scan is None and not self._pts:
            import av

            try:
                container = av.open(str(self.path))
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                self._scan = (container, container.decode(stream))
            except Exception:  # cannot even open it again: decode from the start on each seek
                self._untrusted = True
                return None
        pts = self._pts
        while self._scan is not None and len(pts) <= upto:
            try:
                vf = next(self._scan[1])
            except Exception:  # the end (StopIteration), or damage, where playback stops too
                self._end_scan()
                break
            if getattr(vf, "is_corrupt", False):
                continue
            if vf.pts is None or (pts and vf.pts <= pts[-1]):
                self._untrusted = True
                self._end_scan()
                return None
            pts.append(vf.pts)
        if not pts:
            self._untrusted = True
            return None
        return pts

    def _end_scan(self) -> None:
        if self._scan is not None:
            self._scan[0].close()
            self._scan = None
            if not self._untrusted:
                self.frame_count = len(self._pts)

    def _frames_pyav(self, start: int) -> Iterator[Frame]:
        import av

        table = self._timestamps(start)
        container = av.open(str(self.path))
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first = stream.start_time or 0
            tb = float(stream.time_base) if stream.time_base else None
            if table is not None:
                if start >= len(table):
                    return
                container.seek(table[start], stream=stream, backward=True, any_frame=False)
            index = -1  # past the scanned timestamps (or without them), frames are counted in playback order
            for vf in container.decode(stream):
                if getattr(vf, "is_corrupt", False):
                    continue  # left out by playback as well, and not counted
                if table is not None and vf.pts is not None and vf.pts <= table[-1]:
                    index = bisect.bisect_left(table, vf.pts)
                    if table[index] != vf.pts:
                        raise SourceError(f"cannot seek in {self.path}: frame timestamp {vf.pts} not in the index")
                else:
                    index += 1
                if index < start:
                    continue  # before the target: decoded (needed) but not converted
                image = vf.to_ndarray(format="bgr24")
                k = int(round((getattr(vf, "rotation", 0) or 0) / 90.0)) % 4
                if k:
                    image = np.ascontiguousarray(np.rot90(image, k))
                t = (vf.pts - first) * tb if vf.pts is not None and tb else index / (self.fps or 30.0)
                yield Frame(index, t, image)
        except SourceError:
            raise
        except Exception as e:
            raise SourceError(f"cannot read video {self.path}: {_first_line(e)}") from None
        finally:
            container.close()
