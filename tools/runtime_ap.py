"""Keypoint AP of the detector's pose head per runtime and precision, on COCO-format still images.

    python tools/runtime_ap.py ../shared/data/coco_sample/test_coco.json ../shared/data/ochuman_sample/test_ochuman.json \
        ../shared/data/coco_mini_train2017/annotations/person_keypoints_train2017.json,../shared/data/coco_mini_train2017/train2017 \
        --runtimes torch openvino openvino:int8 --imgsz 640

An entry ``ANN.json,IMAGES`` names the image folder when the images are not beside the annotations.

Each set is scored raw (no tracking) with pycocotools through the benchmark's still-image AP; the int8 model
must have been made first (``occlupose export --precision int8``) from training data, not these images.
"""

from __future__ import annotations

import argparse
import json

from app.bench.runtimes import parse_variant
from app.bench.stills import still_image_ap
from posecore.detector import Detector
from posecore.estimators.yolo import YoloPoseEstimator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("annotations", nargs="+", help="COCO keypoint JSON files (images beside them, or ANN.json,IMAGES)")
    ap.add_argument("--runtimes", nargs="+", default=["torch", "openvino"])
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args()
    estimator = YoloPoseEstimator()
    table: dict[str, dict[str, float]] = {}
    for text in args.runtimes:
        runtime, precision = parse_variant(text)
        det = Detector(imgsz=args.imgsz, device="cpu", runtime=runtime, precision=precision)
        table[text] = {}
        for entry in args.annotations:
            ann, _, images = entry.partition(",")
            result = still_image_ap(ann, lambda im: estimator.estimate(im, det.detect(im)), images=images or None)
            table[text][ann.rsplit("/", 1)[-1]] = round(result.raw, 4)
        print(text, json.dumps(table[text]), flush=True)


if __name__ == "__main__":
    main()
