"""Extra inference passes for better keypoints: flip test, a second scale or tiles, and the zoom-in pass.

YOLO11n-pose was trained at 640 px, so people much smaller than that in the network's input lose joints
and whole persons. :class:`MultiPassDetector` wraps a :class:`posecore.detector.Detector` (calling only its
``detect``, so any runtime behind it speeds the extra passes too) and returns one :class:`Detections` per
frame, as the plain detector does:

- ``flip``: the mirrored frame as well, its people flipped back (left and right joints swapped);
- ``extra: scale``: the frame again at ``extra_imgsz`` (a second detector at that input size);
- ``extra: tiles``: ``tiles`` x ``tiles`` overlapping tiles of the frame, each at the base size;
- ``zoom``: small or doubtful people looked at again, enlarged (:mod:`posecore.estimators.zoom`).

The passes' people are fused on persons (:func:`fuse_people`): people of different passes whose boxes
overlap are one person, their joints averaged weighted by joint confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from .autosize import BASE
from .boxes import box_iou
from .config import option
from .skeleton import COCO17
from .types import Detections


@dataclass
class PassesConfig:
    # Default on: +6.7 % keypoint AP on the COCO images of ../shared at about twice the cost of one pass,
    # which keeps opencv_vtest.avi above real time (README, "Quality presets"). Off where `imgsz: auto`
    # raised the input size: that costs as much as the mirrored pass again (960 on vtest: 1.2x the flip
    # test at 640) and finds the small people a mirrored pass cannot (README, "Input size: auto").
    flip: bool | Literal["auto"] = option(
        "auto", help="average with the mirrored frame (left/right joints swapped back); auto: on, except "
                     "where imgsz: auto chose an input size larger than 640")
    zoom: bool = option(False, help="look again at small or doubtful people, enlarged, in one batched pass")
    zoom_height: int = option(160, ge=0, le=4096,
                              help="people shorter than this in the network's input (px) are zoomed in")
    zoom_doubtful: int = option(6, ge=0, le=17,
                                help="a pose with at least this many joints below confidence 0.5 is zoomed in "
                                     "(0: never for that reason)")
    zoom_max: int = option(8, ge=1, le=64, help="most people zoomed in per frame (the highest scores first)")
    extra: Literal["none", "scale", "tiles"] = option(
        "none", help="a second look at the whole frame for small people: none, scale (at extra_imgsz) or tiles")
    extra_imgsz: int = option(1280, ge=32, le=4096, help="input size of the second scale, multiple of 32")
    tiles: int = option(2, ge=2, le=4, help="tiles per side for extra: tiles")
    fuse_iou: float = option(0.55, gt=0.0, le=1.0, help="box IoU at which people of two passes are one person")

    @property
    def flips(self) -> bool:
        """Whether the mirrored pass runs (``auto`` is on until :meth:`for_auto_size` says otherwise)."""
        return self.flip is not False

    @property
    def active(self) -> bool:
        return self.flips or self.zoom or self.extra != "none"

    def for_auto_size(self, imgsz: int) -> PassesConfig:
        """These passes where ``imgsz: auto`` chose ``imgsz``: above the base, ``flip: auto`` is off."""
        return replace(self, flip=False) if self.flip == "auto" and imgsz > BASE else self


# The --quality presets, measured with `python -m train eval-quality` (README): fast is the plain single
# pass of before; balanced, the default, adds the flip test; best adds the zoom-in pass and 2 x 2 tiles,
# which find nearly every person of a distant crowd that a 1280 pass finds.
QUALITY_PRESETS: dict[str, dict] = {
    "fast": {},
    "balanced": {"flip": "auto"},
    "best": {"flip": True, "zoom": True, "extra": "tiles"},
}


def preset(name: str) -> dict:
    """The ``passes`` settings of a quality preset (a KeyError names an unknown preset)."""
    return {**{"flip": False, "zoom": False, "extra": "none"}, **QUALITY_PRESETS[name]}


# -- geometry ---------------------------------------------------------------------------------------------
def flip_detections(det: Detections, width: int) -> Detections:
    """Detections of a mirrored frame ``width`` pixels wide, in the plain frame (x -> W - x, sides swapped)."""
    boxes = det.boxes.copy()
    boxes[:, [0, 2]] = width - det.boxes[:, [2, 0]]
    kpts = None
    if det.keypoints is not None:
        kpts = det.keypoints[:, COCO17.flip_index].copy() if det.keypoints.shape[1] == COCO17.num_joints \
            else det.keypoints.copy()
        kpts[..., 0] = width - kpts[..., 0]
    return Detections(boxes, det.scores.copy(), kpts)


def shift_detections(det: Detections, dx: float, dy: float, scale: float = 1.0) -> Detections:
    """Detections found in an image cut (and scaled by ``scale``) from a frame at (dx, dy), in that frame."""
    boxes = det.boxes / scale + np.array([dx, dy, dx, dy], np.float32)
    kpts = None
    if det.keypoints is not None:
        kpts = det.keypoints.copy()
        kpts[..., :2] = kpts[..., :2] / scale + np.array([dx, dy], np.float32)
    return Detections(boxes, det.scores, kpts)


def tile_grid(height: int, width: int, n: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """``n`` x ``n`` tiles (x0, y0, x1, y1) covering a frame, neighbours overlapping by ``overlap`` of a tile."""
    def cuts(size: int) -> list[tuple[int, int]]:
        tile = int(np.ceil(size / (n - (n - 1) * overlap)))
        starts = np.linspace(0, size - tile, n).round().astype(int)
        return [(int(s), int(s) + tile) for s in starts]

    return [(x0, y0, x1, y1) for y0, y1 in cuts(height) for x0, x1 in cuts(width)]


def inside_tile(det: Detections, tile: tuple[int, int, int, int], height: int, width: int,
                margin: float = 2.0) -> np.ndarray:
    """bool[N]: people (frame coordinates) not cut by an inner edge of ``tile``; a person cut there is
    whole in a neighbouring tile or in the full frame."""
    x0, y0, x1, y1 = tile
    b = det.boxes
    keep = np.ones(len(det), bool)
    if x0 > 0:
        keep &= b[:, 0] > x0 + margin
    if y0 > 0:
        keep &= b[:, 1] > y0 + margin
    if x1 < width:
        keep &= b[:, 2] < x1 - margin
    if y1 < height:
        keep &= b[:, 3] < y1 - margin
    return keep


# -- fusion -----------------------------------------------------------------------------------------------
def fuse_joints(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32[K, 3]: two estimates of one person's joints, positions weighted by joint confidence;
    confidence the mean of the two."""
    wa = np.maximum(a[:, 2], 1e-3)[:, None]
    wb = np.maximum(b[:, 2], 1e-3)[:, None]
    out = np.empty_like(a)
    out[:, :2] = (a[:, :2] * wa + b[:, :2] * wb) / (wa + wb)
    out[:, 2] = (a[:, 2] + b[:, 2]) / 2
    return out


def fuse_people(passes: list[Detections], iou: float = 0.55) -> Detections:
    """One person per group of overlapping people of different passes (box IoU >= ``iou``).

    Greedy by decreasing score: the best remaining person takes its best match from each other pass; the
    group's box and joints are averaged (boxes weighted by score, joints by joint confidence) and its score
    is the best of the group. Two people of one pass are never merged (the detector's NMS kept them apart).
    """
    passes = [p for p in passes if len(p)]
    if not passes:
        return Detections.empty(17)
    if len(passes) == 1:
        return passes[0]
    boxes = np.concatenate([p.boxes for p in passes])
    scores = np.concatenate([p.scores for p in passes])
    kpts = np.concatenate([p.keypoints for p in passes]) if all(p.keypoints is not None for p in passes) else None
    source = np.concatenate([np.full(len(p), i) for i, p in enumerate(passes)])
    overlap = box_iou(boxes, boxes)
    used = np.zeros(len(boxes), bool)
    out_b, out_s, out_k = [], [], []
    for i in np.argsort(-scores, kind="stable"):
        if used[i]:
            continue
        used[i] = True
        group = [i]
        for s in range(len(passes)):
            if s == source[i]:
                continue
            cand = np.where(~used & (source == s) & (overlap[i] >= iou))[0]
            if len(cand):
                j = cand[np.argmax(overlap[i, cand])]
                used[j] = True
                group.append(j)
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_s.append(scores[group].max())
        if kpts is not None:  # positions weighted by joint confidence, confidence the group's mean
            c = np.maximum(kpts[group][..., 2], 1e-3)[..., None]
            k = np.concatenate([(kpts[group][..., :2] * c).sum(0) / c.sum(0), kpts[group][..., 2:].mean(0)], -1)
            out_k.append(k)
    fused = Detections(np.array(out_b, np.float32), np.array(out_s, np.float32),
                       np.array(out_k, np.float32) if kpts is not None else None)
    return fused.select(np.argsort(-fused.scores, kind="stable"))


# -- the detector with extra passes ------------------------------------------------------------------------
class MultiPassDetector:
    """A detector plus the extra passes of ``cfg``; ``detect(frame) -> Detections`` like the detector.

    ``second`` is the detector for ``extra: scale`` (the same weights at ``cfg.extra_imgsz``).
    """

    def __init__(self, base, cfg: PassesConfig, second=None):
        if cfg.extra == "scale" and second is None:
            raise ValueError("extra: scale needs a second detector")
        self.base = base
        self.cfg = cfg
        self.second = second
        # What the rest of the pipeline reads from a detector.
        self.thread_safe = bool(getattr(base, "thread_safe", False)) and (
            second is None or bool(getattr(second, "thread_safe", False)))
        for name in ("device", "weights", "imgsz", "conf", "iou", "model", "has_pose_head", "runtime", "precision",
                     "_precision"):
            if hasattr(base, name):
                setattr(self, name, getattr(base, name))

    @classmethod
    def from_config(cls, base, detector_cfg, cfg: PassesConfig) -> "MultiPassDetector":
        """``base`` with the passes of ``cfg``; a second detector of ``detector_cfg`` at ``extra_imgsz``."""
        second = None
        if cfg.extra == "scale":
            second = type(base).from_config(replace(detector_cfg, imgsz=cfg.extra_imgsz))
        return cls(base, cfg, second)

    def set_concurrency(self, workers: int, threads: int) -> None:
        """As :meth:`posecore.detector.Detector.set_concurrency`, for every detector the passes run."""
        for det in (self.base, self.second):
            if det is not None:
                det.set_concurrency(workers, threads)

    def detect(self, frame: np.ndarray) -> Detections:
        """People in one BGR uint8[H, W, 3] frame after every pass, by decreasing score."""
        cfg = self.cfg
        h, w = frame.shape[:2]
        plain = self.base.detect(frame)
        passes = [plain]
        if cfg.flips:
            passes.append(flip_detections(self.base.detect(np.ascontiguousarray(frame[:, ::-1])), w))
        if cfg.extra == "scale":
            passes.append(self.second.detect(frame))
        elif cfg.extra == "tiles":
            passes.append(self._tiles(frame))
        people = fuse_people(passes, cfg.fuse_iou)
        if cfg.zoom and people.keypoints is not None:
            from .estimators.zoom import zoom_in

            people = zoom_in(self.base, frame, people, cfg, base_scale=self._base_scale(h, w))
        return people

    def _base_scale(self, height: int, width: int) -> float:
        """Network pixels per frame pixel of the base pass."""
        return float(getattr(self.base, "imgsz", max(height, width))) / max(height, width)

    def _tiles(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        found = []
        for tile in tile_grid(h, w, self.cfg.tiles):
            x0, y0, x1, y1 = tile
            det = shift_detections(self.base.detect(np.ascontiguousarray(frame[y0:y1, x0:x1])), x0, y0)
            found.append(det.select(inside_tile(det, tile, h, w)))
        # Tiles overlap: the same person whole in two tiles is one person.
        return fuse_people(found, self.cfg.fuse_iou)

    @property
    def feature_tap(self):
        """None: the refiner, which reads one pass's neck maps, runs without the extra passes."""
        return None
