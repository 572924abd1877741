"""Drawing occluders into copies of frames: a grey block, or a passer-by pasted from another frame."""

from __future__ import annotations

import cv2
import numpy as np

from .events import OcclusionEvent, StressPlan, walk_in_frames

BLOCK_COLOUR = (128, 128, 128)


def donor_crop(image: np.ndarray, box: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """uint8[h, w, 3] crop of ``box`` (with a margin) from a BGR frame."""
    x1, y1, x2, y2 = _expand(box, margin, image.shape)
    return image[y1:y2, x1:x2].copy()


def _expand(box: np.ndarray, margin: float, shape) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = shape[:2]
    return (int(max(0, np.floor(x1 - mw))), int(max(0, np.floor(y1 - mh))),
            int(min(w, np.ceil(x2 + mw))), int(min(h, np.ceil(y2 + mh))))


def render(image: np.ndarray, event: OcclusionEvent, frame: int, crop: np.ndarray | None = None) -> None:
    """Draw ``event``'s occluder for ``frame`` onto ``image`` (BGR uint8[H, W, 3], in place).

    A ``person`` occluder is a row of copies of the donor's crop, 15 % taller than the target, crossing
    in front of it at constant speed relative to it: it enters touching the target's side, covers the
    target completely for ``frames`` frames, and leaves touching the other side.
    """
    box = event.boxes.get(frame)
    if box is None:
        return
    if event.kind == "block":
        x1, y1, x2, y2 = _expand(box, 0.1, image.shape)
        image[y1:y2, x1:x2] = BLOCK_COLOUR
        return
    if crop is None or not crop.size:
        raise ValueError("a person occluder needs the donor's crop")
    tw, th = _event_size(event)
    m = walk_in_frames(event.frames)
    step = tw / m  # relative speed: from touching one side to covering in m frames
    w = int(round(tw + step * (event.frames - 1)))  # wide enough to cover the target for k frames
    h = int(round(1.15 * th))
    i = frame - min(event.boxes)
    offset = event.direction * step * (i - (len(event.boxes) - 1) / 2)
    cx = (box[0] + box[2]) / 2 + offset
    cy = (box[1] + box[3]) / 2
    _paste(image, _tiled(crop, w, h), int(round(cx - w / 2)), int(round(cy - h / 2)))


def _event_size(event: OcclusionEvent) -> tuple[float, float]:
    """Median width and height of the target's box over the event."""
    b = np.stack(list(event.boxes.values()))
    return float(np.median(b[:, 2] - b[:, 0])), float(np.median(b[:, 3] - b[:, 1]))


def _tiled(crop: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8[h, w, 3]: copies of ``crop`` scaled to height ``h``, side by side."""
    cw = max(1, int(round(h * crop.shape[1] / max(crop.shape[0], 1))))
    one = cv2.resize(crop, (cw, max(h, 1)), interpolation=cv2.INTER_LINEAR)
    reps = -(-max(w, 1) // cw)
    row = np.concatenate([one] * reps, axis=1)
    start = (row.shape[1] - w) // 2
    return row[:, start:start + w]


def _paste(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    H, W = image.shape[:2]
    h, w = patch.shape[:2]
    ax1, ay1, ax2, ay2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if ax2 > ax1 and ay2 > ay1:
        image[ay1:ay2, ax1:ax2] = patch[ay1 - y:ay2 - y, ax1 - x:ax2 - x]


def donor_crops(open_frames, plans: list[StressPlan]) -> dict[tuple[str, int], np.ndarray]:
    """(plan name, event number) -> the pasted person's crop, for every ``person`` event."""
    wanted: dict[int, list[tuple[tuple[str, int], np.ndarray]]] = {}
    for p in plans:
        for i, e in enumerate(p.events):
            if e.donor is not None:
                wanted.setdefault(e.donor[0], []).append(((p.name, i), e.donor[1]))
    out: dict[tuple[str, int], np.ndarray] = {}
    if not wanted:
        return out
    last = max(wanted)
    for frame in open_frames():
        for key, box in wanted.get(frame.index, ()):
            out[key] = donor_crop(frame.image, box)
        if frame.index >= last:
            break
    return out
