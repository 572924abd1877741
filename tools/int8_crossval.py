"""int8's keypoint AP change by cross-validation: calibrate on the videos plus all COCO-format images but one
fold, score the fold with the fp32 and the int8 model, for every fold.

    python tools/int8_crossval.py ../shared/data/coco_mini_train2017/annotations/person_keypoints_train2017.json \
        ../shared/data/coco_mini_train2017/train2017 --videos ../shared/data/videos --folds 2 --frames 300

Calibrating on COCO images and scoring COCO images is what the int8 model meets in use, but no image may be
both; the folds let every image be scored by a model that never saw it. Images are dealt to folds by sorted
id (image k to fold k mod F). Models are made by ``occlupose export``'s own steps, in a temporary cache:
the user's cache is left as it was. README, "Runtime", gives what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("annotations", help="COCO keypoint JSON")
    ap.add_argument("images", help="its image folder")
    ap.add_argument("--videos", nargs="*", default=[], help="videos or folders of them, in every fold's calibration")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--frames", type=int, default=300, help="calibration frames, as occlupose export --frames")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="int8cv-"))
    os.environ["OCCLUPOSE_CACHE_DIR"] = str(work / "cache")  # read when a model is looked up

    from app.bench.stills import still_image_ap
    from posecore.detector import Detector
    from posecore.estimators.yolo import YoloPoseEstimator
    from posecore.runtime.calibration import calibration_frames
    from posecore.runtime.loader import export_model

    gt = json.loads(Path(args.annotations).read_text(encoding="utf-8"))
    images = sorted(gt["images"], key=lambda im: int(im["id"]))
    estimator = YoloPoseEstimator()
    drops = []
    for fold in range(args.folds):
        held = [im for k, im in enumerate(images) if k % args.folds == fold]
        ids = {int(im["id"]) for im in held}
        calib = work / f"calibration{fold}"
        calib.mkdir()
        for im in images:
            if int(im["id"]) not in ids:
                (calib / Path(im["file_name"]).name).symlink_to(Path(args.images, im["file_name"]).resolve())
        scored = work / f"fold{fold}.json"
        scored.write_text(json.dumps({**gt, "images": held,
                                      "annotations": [a for a in gt["annotations"] if int(a["image_id"]) in ids]}))
        frames = calibration_frames([*args.videos, calib], args.frames)
        export_model(Detector(imgsz=640, device="cpu", runtime="torch"), "int8", frames)
        ap_ = {}
        for precision in ("fp32", "int8"):
            det = Detector(imgsz=640, device="cpu", runtime="openvino", precision=precision)
            ap_[precision] = still_image_ap(scored, lambda im: estimator.estimate(im, det.detect(im)),
                                            images=args.images).raw
        drops.append(ap_["int8"] - ap_["fp32"])
        print(f"fold {fold}: {len(held)} images scored, {len(frames)} calibration frames; AP fp32 {ap_['fp32']:.4f}, "
              f"int8 {ap_['int8']:.4f} ({drops[-1]:+.4f})", flush=True)
    print(f"mean change {sum(drops) / len(drops):+.4f}")


if __name__ == "__main__":
    main()
