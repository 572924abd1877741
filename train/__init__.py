"""Training and evaluation of the pose models: ``python -m train fit|eval`` (see train/README.md).

datasets/   COCO, CrowdPose, OCHuman in their native formats; top-down crops; refiner pairs
transforms/ geometry (centre/scale, half-body, scale/rotation, flip, crop) and occlusion augmentations
losses.py   lm, lt, lp, the LJA structure loss, visibility; refiner.py the CoupleGraph's loss and scoring
trainer.py  the loop with hooks (hooks.py), checkpoints (checkpoint.py), DDP helpers (distributed.py)
evaluate.py keypoint AP/AR (COCO/OCHuman, CrowdPose, visible/occluded); inference.py runs a model for it
"""
