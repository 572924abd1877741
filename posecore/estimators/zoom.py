"""The zoom-in pass: small or doubtful people looked at again, enlarged, and fused by joint confidence.

A person is zoomed in when it is shorter than ``zoom_height`` pixels in the network's input, or its pose is
doubtful (``zoom_doubtful`` joints or more below confidence 0.5, or its box overlaps another person's).
Each one is cut from the frame as a square with context around its box and resized into one cell of a
2 x 2 mosaic at the detector's input size, so that four people (or two, each beside its mirror image with
``flip``) cost one pass of the detector. In each cell the detection that matches the person's box is mapped
back into the frame (a mirrored cell flipped back, left and right joints swapped) and its joints are fused
with the first estimate by joint confidence (:func:`posecore.multiscale.fuse_joints`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import box_iou
from ..multiscale import PassesConfig, flip_detections, fuse_joints, shift_detections
from ..types import Detections

CONTEXT = 1.5  # crop side / the box's longer side: the person fills two thirds of its cell
MIN_GAIN = 1.2  # zoom only when the person comes out at least this much larger than in the base pass
MATCH_IOU = 0.3  # a zoomed detection belongs to the person when their boxes overlap this much
GRID = 2  # cells per mosaic side
PAD = 114  # Ultralytics' letterbox grey


@dataclass
class Cell:
    """Where one crop lies: frame square (x0, y0, side) drawn at ``scale`` into the mosaic at (cx, cy)."""

    person: int
    x0: float
    y0: float
    scale: float
    cx: int
    cy: int
    size: int
    flipped: bool

    def to_frame(self, det: Detections) -> Detections:
        """Detections of the mosaic whose centre lies in this cell, in frame coordinates."""
        centre = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
        inside = ((centre[:, 0] >= self.cx) & (centre[:, 0] < self.cx + self.size)
                  & (centre[:, 1] >= self.cy) & (centre[:, 1] < self.cy + self.size))
        local = shift_detections(det.select(inside), -self.cx, -self.cy)
        if self.flipped:
            local = flip_detections(local, self.size)
        return shift_detections(local, self.x0, self.y0, self.scale)


def candidates(people: Detections, cfg: PassesConfig, base_scale: float) -> np.ndarray:
    """int[M]: the people to zoom in, by decreasing score, at most ``cfg.zoom_max``."""
    n = len(people)
    if n == 0:
        return np.zeros(0, int)
    height = (people.boxes[:, 3] - people.boxes[:, 1]) * base_scale
    pick = height < cfg.zoom_height
    if cfg.zoom_doubtful > 0:
        pick |= (people.keypoints[..., 2] < 0.5).sum(1) >= cfg.zoom_doubtful
        iou = box_iou(people.boxes, people.boxes)
        np.fill_diagonal(iou, 0)
        pick |= iou.max(1) >= MATCH_IOU if n > 1 else False
    return np.where(pick)[0][: cfg.zoom_max]  # people come by decreasing score


def crop_square(box: np.ndarray) -> tuple[float, float, float]:
    """(x0, y0, side) of the square with context around ``box``."""
    w, h = box[2] - box[0], box[3] - box[1]
    side = CONTEXT * max(w, h, 1.0)
    return (box[0] + box[2] - side) / 2, (box[1] + box[3] - side) / 2, side


def layout(people: Detections, picked: np.ndarray, cell: int, base_scale: float, flip: bool) -> list[Cell]:
    """The cells of the picked people that zooming enlarges, in mosaic order (GRID * GRID per mosaic)."""
    cells = []
    for i in picked:
        x0, y0, side = crop_square(people.boxes[i])
        scale = cell / side
        if scale < MIN_GAIN * base_scale:
            continue
        for flipped in ((False, True) if flip else (False,)):
            k = len(cells) % (GRID * GRID)
            cells.append(Cell(int(i), x0, y0, scale, (k % GRID) * cell, (k // GRID) * cell, cell, flipped))
    return cells


def draw(frame: np.ndarray, cells: list[Cell], cell: int) -> np.ndarray:
    """uint8[GRID * cell, GRID * cell, 3]: the crops of ``cells`` (at most GRID * GRID) in one image."""
    mosaic = np.full((GRID * cell, GRID * cell, 3), PAD, np.uint8)
    for c in cells:
        # OpenCV maps pixel centres: the half-pixel terms keep x_cell = scale * (x - x0) on pixel edges
        half = 0.5 * (c.scale - 1)
        m = np.array([[c.scale, 0, half - c.scale * c.x0], [0, c.scale, half - c.scale * c.y0]], np.float32)
        crop = cv2.warpAffine(frame, m, (cell, cell), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(PAD, PAD, PAD))
        mosaic[c.cy:c.cy + cell, c.cx:c.cx + cell] = crop[:, ::-1] if c.flipped else crop
    return mosaic


def zoom_in(detector, frame: np.ndarray, people: Detections, cfg: PassesConfig, base_scale: float) -> Detections:
    """``people`` (with keypoints) with the joints of small or doubtful ones fused with a zoomed-in look."""
    cell = int(getattr(detector, "imgsz", 640)) // GRID
    cells = layout(people, candidates(people, cfg, base_scale), cell, base_scale, cfg.flips)
    if not cells:
        return people
    found: dict[int, list[np.ndarray]] = {}
    per_mosaic = GRID * GRID
    for start in range(0, len(cells), per_mosaic):
        batch = cells[start:start + per_mosaic]
        det = detector.detect(draw(frame, batch, cell))
        if len(det) == 0 or det.keypoints is None:
            continue
        for c in batch:
            mine = c.to_frame(det)
            if len(mine) == 0:
                continue
            iou = box_iou(people.boxes[c.person:c.person + 1], mine.boxes)[0]
            j = int(np.argmax(iou))
            if iou[j] >= MATCH_IOU:
                found.setdefault(c.person, []).append(mine.keypoints[j])
    if not found:
        return people
    kpts = people.keypoints.copy()
    for i, views in found.items():
        zoomed = views[0] if len(views) == 1 else fuse_joints(views[0], views[1])
        kpts[i] = fuse_joints(kpts[i], zoomed)
    return Detections(people.boxes, people.scores, kpts)
