"""Pose estimators: turn a frame and its person detections into per-person keypoints."""

from .base import PoseEstimator
from .yolo import YoloPoseEstimator

__all__ = ["PoseEstimator", "YoloPoseEstimator"]
