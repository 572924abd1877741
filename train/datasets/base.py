"""Reading a COCO-format keypoint file into checked per-person records.

Bad entries never stop a run: an annotation that is malformed, a person with no labelled joint, a crowd
region or an image file that is missing is skipped and counted in a :class:`DatasetReport`, which the
commands print once before training or evaluation starts. Only an unreadable annotation file as a whole
is an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posecore.errors import OccluposeError
from posecore.skeleton import Skeleton, get_skeleton


class DatasetError(OccluposeError):
    """An annotation or detection file cannot be used at all (missing, not JSON, wrong layout)."""


@dataclass
class DatasetReport:
    """What was kept and what was skipped while reading a dataset, with the first few reasons."""

    name: str
    kept_people: int = 0
    kept_images: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 5

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{reason}: {detail}")

    def summary(self) -> str:
        line = f"{self.name}: {self.kept_people} people in {self.kept_images} images"
        if self.skipped:
            line += "; skipped " + ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        return line

    def details(self) -> list[str]:
        return list(self.examples)


@dataclass(frozen=True)
class ImageRecord:
    """One image: its file and every labelled non-crowd person in it (for the multi-person targets).

    people: float32[P, K, 3] keypoints (x, y, v) of the labelled people; ann_ids: int64[P].
    """

    image_id: int
    path: Path
    width: int
    height: int
    people: np.ndarray
    ann_ids: np.ndarray
    crowd_index: float | None = None


@dataclass(frozen=True)
class PersonRecord:
    """One person to crop: a box (x, y, w, h in pixels) with, for annotated people, keypoints float32[K, 3]."""

    image_id: int
    box: np.ndarray
    keypoints: np.ndarray | None
    ann_id: int = -1  # -1 for a detection box
    score: float = 1.0
    area: float = 0.0


@dataclass(frozen=True)
class PoolInstance:
    """A person that can be cut out by its segmentation (a COCO polygon list or RLE dict)."""

    image_id: int
    ann_id: int
    box: np.ndarray  # float32[4] x, y, w, h
    keypoints: np.ndarray  # float32[K, 3]
    segmentation: Any


class KeypointAnnotations:
    """A COCO-format person-keypoint file, checked, with the data every later step needs.

    Subclasses adapt the details of one dataset (its skeleton, a missing ``area``, crowd index).
    """

    default_skeleton = "coco17"
    name = "coco"

    def __init__(self, ann_file: str | Path, img_dir: str | Path, skeleton: str | Skeleton | None = None,
                 max_people: int | None = None, check_files: bool = True):
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir)
        if skeleton is None or skeleton == "":
            skeleton = self.default_skeleton
        self.skeleton = skeleton if isinstance(skeleton, Skeleton) else _skeleton(skeleton)
        self.report = DatasetReport(f"{self.name} {self.ann_file.name}")
        self.raw = read_json(self.ann_file)
        self._check_layout()
        self.images: dict[int, ImageRecord] = {}
        self.people: list[PersonRecord] = []
        self.pool: list[PoolInstance] = []
        self._parse(max_people, check_files)

    # -- dataset-specific hooks -------------------------------------------------------------------------
    def area(self, ann: dict, box: np.ndarray) -> float:
        a = ann.get("area")
        if isinstance(a, (int, float)) and math.isfinite(a) and a > 0:
            return float(a)
        return float(box[2] * box[3])

    def crowd_index(self, image: dict) -> float | None:
        return None

    # -- parsing -----------------------------------------------------------------------------------------
    def _check_layout(self) -> None:
        if not isinstance(self.raw, dict) or not isinstance(self.raw.get("images"), list) \
                or not isinstance(self.raw.get("annotations"), list):
            raise DatasetError(f"{self.ann_file}: not a COCO keypoint file (needs 'images' and 'annotations' lists)")
        cats = self.raw.get("categories") or []
        for cat in cats:
            names = cat.get("keypoints") if isinstance(cat, dict) else None
            if names and len(names) != self.skeleton.num_joints:
                raise DatasetError(f"{self.ann_file}: category {cat.get('name')!r} has {len(names)} keypoints, "
                                   f"skeleton {self.skeleton.name} has {self.skeleton.num_joints}")

    def _parse(self, max_people: int | None, check_files: bool) -> None:
        k = self.skeleton.num_joints
        image_info: dict[int, dict] = {}
        for img in self.raw["images"]:
            image_id = _as_int(img.get("id")) if isinstance(img, dict) else None
            if image_id is None:
                self.report.skip("malformed image entries", repr(img)[:80])
                continue
            # A size that is not a positive whole number counts as unknown (boxes are then not clipped).
            image_info[image_id] = dict(img, width=_as_int(img.get("width")) or 0,
                                        height=_as_int(img.get("height")) or 0)
        exists: dict[int, bool] = {}
        per_image: dict[int, list[tuple[int, np.ndarray]]] = {}
        for ann in self.raw["annotations"]:
            parsed = self._parse_annotation(ann, image_info, k)
            if parsed is None:
                continue
            image_id, box, kpts = parsed
            if image_id not in exists:
                path = self.img_dir / str(image_info[image_id].get("file_name", ""))
                exists[image_id] = (not check_files) or path.is_file()
            if not exists[image_id]:
                path = self.img_dir / str(image_info[image_id].get("file_name", ""))
                self.report.skip("people whose image is missing", str(path))
                continue
            ann_id = _as_int(ann.get("id", -1))
            ann_id = -1 if ann_id is None else ann_id
            per_image.setdefault(image_id, []).append((ann_id, kpts))
            if max_people is None or len(self.people) < max_people:
                self.people.append(PersonRecord(image_id, box, kpts, ann_id, 1.0, self.area(ann, box)))
            seg = ann.get("segmentation")
            if seg and not ann.get("iscrowd"):
                self.pool.append(PoolInstance(image_id, ann_id, box, kpts, seg))
        for image_id, items in per_image.items():
            info = image_info[image_id]
            people = np.stack([p for _, p in items]).astype(np.float32)
            self.images[image_id] = ImageRecord(
                image_id, self.img_dir / str(info["file_name"]), int(info.get("width", 0) or 0),
                int(info.get("height", 0) or 0), people, np.asarray([a for a, _ in items], np.int64),
                self.crowd_index(info))
        self.report.kept_people = len(self.people)
        self.report.kept_images = len({p.image_id for p in self.people})

    def _parse_annotation(self, ann: Any, image_info: dict[int, dict], k: int):
        """(image_id, box float32[4] xywh, keypoints float32[K, 3]) or None, with the reason reported."""
        if not isinstance(ann, dict):
            self.report.skip("malformed annotations", repr(ann)[:80])
            return None
        ann_id = ann.get("id", "?")
        if not isinstance(ann_id, (int, str)) or _as_int(ann.get("id", 0)) is None:
            self.report.skip("malformed annotations", f"annotation {str(ann_id)[:40]}: id is not a whole number")
            return None
        image_id = _as_int(ann.get("image_id"))
        if image_id is None:
            self.report.skip("malformed annotations", f"annotation {ann_id}: no image_id")
            return None
        if image_id not in image_info:
            self.report.skip("annotations of unknown images", f"annotation {ann_id}: image {image_id}")
            return None
        crowd = _as_int(ann.get("iscrowd", 0) or 0)
        if crowd is None:
            self.report.skip("malformed annotations", f"annotation {ann_id}: iscrowd is not 0 or 1")
            return None
        if crowd:
            self.report.skipped["crowd regions"] += 1
            return None
        try:
            box = np.asarray(ann["bbox"], np.float64).reshape(4)
            kpts = np.asarray(ann["keypoints"], np.float64).reshape(k, 3)
        except (KeyError, TypeError, ValueError):
            self.report.skip("malformed annotations", f"annotation {ann_id}: bbox/keypoints not {4}/{3 * k} numbers")
            return None
        if not (np.isfinite(box).all() and np.isfinite(kpts).all()) or box[2] <= 0 or box[3] <= 0:
            self.report.skip("malformed annotations", f"annotation {ann_id}: bad box {box.tolist()}")
            return None
        if not np.isin(kpts[:, 2], (0, 1, 2)).all():
            self.report.skip("malformed annotations", f"annotation {ann_id}: visibility flags not in 0/1/2")
            return None
        if not (kpts[:, 2] > 0).any():
            self.report.skipped["people without labelled joints"] += 1
            return None
        box = _clip_box(box, image_info[image_id])
        if box is None:
            self.report.skip("malformed annotations", f"annotation {ann_id}: box outside its image")
            return None
        return image_id, box.astype(np.float32), kpts.astype(np.float32)

    # -- queries -----------------------------------------------------------------------------------------
    def others(self, person: PersonRecord) -> np.ndarray:
        """float32[P, K, 3]: the other labelled people of the person's image."""
        rec = self.images.get(person.image_id)
        if rec is None:
            return np.zeros((0, self.skeleton.num_joints, 3), np.float32)
        return rec.people[rec.ann_ids != person.ann_id]

    def image_path(self, image_id: int) -> Path:
        rec = self.images.get(image_id)
        if rec is not None:
            return rec.path
        for img in self.raw["images"]:
            if isinstance(img, dict) and _as_int(img.get("id")) == image_id:
                return self.img_dir / str(img.get("file_name", ""))
        raise KeyError(image_id)

    def image_ids(self) -> list[int]:
        ids = (_as_int(img.get("id")) for img in self.raw["images"] if isinstance(img, dict))
        return sorted(i for i in ids if i is not None)


def _as_int(value: Any) -> int | None:
    """A JSON number that is a whole, finite value as an int (numeric strings too); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
        return int(f) if math.isfinite(f) and f == int(f) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _clip_box(box: np.ndarray, info: dict) -> np.ndarray | None:
    """Clip an x, y, w, h box to its image when the size is known (as the HRNet loaders do); None if empty."""
    w, h = info.get("width"), info.get("height")
    if not w or not h:
        return box
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(w - 1.0, x1 + max(0.0, box[2] - 1)), min(h - 1.0, y1 + max(0.0, box[3] - 1))
    if x2 <= x1 or y2 <= y1:
        return None
    return np.asarray([x1, y1, x2 - x1, y2 - y1], np.float64)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"annotation file not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"annotation file is a folder: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _skeleton(name: str) -> Skeleton:
    try:
        return get_skeleton(name)
    except ValueError as e:
        raise DatasetError(str(e)) from None


def load_detections(path: str | Path, known_images: set[int], score_thr: float = 0.0,
                    report: DatasetReport | None = None) -> list[PersonRecord]:
    """Person boxes from a COCO results list (``image_id``, ``bbox`` x y w h, ``score``, ``category_id``)."""
    raw = read_json(Path(path))
    if not isinstance(raw, list):
        raise DatasetError(f"{path}: expected a COCO results list of detections")
    out = []
    for det in raw:
        try:
            image_id = _as_int(det["image_id"])
            box = np.asarray(det["bbox"], np.float64).reshape(4)  # float64: huge values stay finite to check
            score = float(det.get("score", 1.0))
            cat = _as_int(det.get("category_id", 1))
            if image_id is None or cat is None:
                raise ValueError("id is not a whole number")
        except (KeyError, TypeError, ValueError):
            if report:
                report.skip("malformed detections", repr(det)[:80])
            continue
        if cat != 1 or score < score_thr:
            continue
        if image_id not in known_images:
            if report:
                report.skip("detections of unknown images", f"image {image_id}")
            continue
        # within float32's range (NaN and infinities fail the comparison too)
        in_range = (np.abs(box) < np.finfo(np.float32).max).all()
        if not in_range or box[2] <= 0 or box[3] <= 0 or not math.isfinite(score):
            if report:
                report.skip("malformed detections", f"image {image_id}: box {box.tolist()}")
            continue
        box = box.astype(np.float32)
        out.append(PersonRecord(image_id, box, None, -1, score, float(box[2] * box[3])))
    return out
