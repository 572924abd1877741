"""Random access into a video file: the frames from any index on, for players that seek and step.

Frame ``i`` here is the same image as the ``i``-th frame :class:`VideoFileSource` yields, which leaves
out frames decoded with errors (``is_corrupt``). With PyAV, the presentation timestamps of the frames it
yields, found once by decoding the whole file without converting colours (only decoding tells a damaged
frame from a good one, and counting packets would shift every index after it), map an index to a
timestamp; a seek jumps to the keyframe before it and decodes forward. Files whose timestamps cannot be
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
        self._pts: list[int] | None = None
        self._scanned = False

    def frames(self, start: int = 0) -> Iterator[Frame]:
        start = max(0, int(start))
        if start == 0:
            return iter(self.source)
        if self.source._backend == "opencv":
            return self.source._frames_opencv(start)
        return self._frames_pyav(start)

    # ------------------------------------------------------------------ PyAV
    def _timestamps(self) -> list[int] | None:
        """Presentation timestamps of the frames playback yields, in order, or None when they cannot
        index frames. A file that breaks off mid-way is indexed up to the damage, as playback stops there."""
        if self._scanned:
            return self._pts
        self._scanned = True
        import av

        pts: list[int] = []
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                decoder = container.decode(stream)
                while True:
                    try:
                        vf = next(decoder)
                    except StopIteration:
                        break
                    except Exception:  # damage: playback stops here too
                        break
                    if not getattr(vf, "is_corrupt", False):
                        pts.append(vf.pts)
        except Exception:  # cannot even open it again: decode from the start on each seek
            return None
        if not pts or any(p is None for p in pts) or any(b <= a for a, b in zip(pts, pts[1:])):
            return None
        self._pts = pts
        self.frame_count = len(pts)
        return self._pts

    def _frames_pyav(self, start: int) -> Iterator[Frame]:
        import av

        table = self._timestamps()
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
            count = 0  # decode-order counter, used when there is no timestamp table
            for vf in container.decode(stream):
                if getattr(vf, "is_corrupt", False):
                    continue  # left out by playback as well, and not counted
                if table is not None:
                    index = bisect.bisect_left(table, vf.pts)
                    if index >= len(table) or table[index] != vf.pts:
                        raise SourceError(f"cannot seek in {self.path}: frame timestamp {vf.pts} not in the index")
                else:
                    index = count
                    count += 1
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
