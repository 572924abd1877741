"""OCHuman in its COCO-format release (``ochuman_coco_format_*.json``): COCO-17 joints, RLE masks.

OCHuman is only for evaluation in the papers (models train on COCO); its COCO-format files use the same
keys as COCO, so reading them is COCO's reading under another name.
"""

from __future__ import annotations

from .coco import CocoKeypoints


class OCHumanKeypoints(CocoKeypoints):
    default_skeleton = "coco17"
    name = "ochuman"
