"""The trackers compared by the quality benchmark, behind one ``update`` / ``flush`` interface, fed with
the same detections."""

from __future__ import annotations

import numpy as np

from posecore.types import Poses
from trackers.smoother import FixedLagSmoother
from trackers.tracker import Tracker, TrackerConfig

from .metrics import FrameTracks

TRACKERS = ("bytetrack", "botsort", "occlupose")


class UltralyticsTracker:
    """An Ultralytics tracker (``bytetrack.yaml``, ``botsort.yaml``) fed with given detections, exactly as
    ``YOLO.track`` feeds it from its own predictions (same config, frame rate and input)."""

    def __init__(self, config: str):
        from posecore.ultralytics_env import import_ultralytics

        import_ultralytics()  # first, so that Ultralytics uses our settings folder, not ~/.config/Ultralytics
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(config)))
        self.tracker = TRACKER_MAP[cfg.tracker_type](args=cfg)

    def update(self, poses: Poses, image: np.ndarray, frame_index: int | None = None) -> list[FrameTracks]:
        return [self._update(poses, image)]

    def flush(self) -> list[FrameTracks]:
        return []

    def _update(self, poses: Poses, image: np.ndarray) -> FrameTracks:
        import torch
        from ultralytics.engine.results import Boxes

        n = len(poses)
        data = np.concatenate([poses.boxes, poses.scores[:, None], np.zeros((n, 1), np.float32)], 1)
        boxes = Boxes(torch.from_numpy(data.astype(np.float32)), image.shape[:2]).cpu().numpy()
        tracks = self.tracker.update(boxes, image)
        if len(tracks) == 0:
            return FrameTracks.empty(poses.num_joints)
        idx = tracks[:, -1].astype(int)
        h, w = image.shape[:2]
        boxes = np.clip(tracks[:, :4], 0, [w, h, w, h])  # as YOLO.track reports them: inside the image
        return FrameTracks(tracks[:, 4].astype(np.int64), boxes.astype(np.float32),
                           poses.keypoints[idx].astype(np.float32), np.ones(len(tracks), bool))


class OccluposeTracker:
    """occlupose's tracker and its fixed-lag smoothing, as ``occlupose process`` runs them, behind the same
    ``update`` / ``flush`` as :class:`UltralyticsTracker` (results come out ``smoothing_lag`` frames late)."""

    def __init__(self, config: TrackerConfig | None = None):
        self.tracker = Tracker(config)
        self.smoother: FixedLagSmoother[int] = FixedLagSmoother(self.tracker.config.smoothing_lag)

    def update(self, poses: Poses, image: np.ndarray | None, frame_index: int) -> list[FrameTracks]:
        tracks = self.tracker.update(poses, frame_index, keep_step=True, width=frame_width(image))
        done = self.smoother.push(poses.num_joints, tracks, self.tracker.last_step)
        return [FrameTracks.from_tracks(tracks, k) for k, tracks in done]

    def flush(self) -> list[FrameTracks]:
        return [FrameTracks.from_tracks(tracks, k) for k, tracks in self.smoother.flush()]


def from_ultralytics_result(result, num_joints: int = 17) -> FrameTracks:
    """FrameTracks from a ``YOLO.track`` result (tracks without an ID yet are left out)."""
    boxes = result.boxes
    if boxes is None or boxes.id is None or len(boxes) == 0:
        return FrameTracks.empty(num_joints)
    kpts = result.keypoints.data.float().cpu().numpy() if result.keypoints is not None else \
        np.zeros((len(boxes), num_joints, 3), np.float32)
    return FrameTracks(boxes.id.cpu().numpy().astype(np.int64), boxes.xyxy.float().cpu().numpy(), kpts,
                       np.ones(len(boxes), bool))


def frame_width(image: np.ndarray | None) -> int | None:
    """The frame width the tracker's ``edge_sliver`` needs; None without an image."""
    return None if image is None else int(image.shape[1])
