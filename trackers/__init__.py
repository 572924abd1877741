"""Identity over time: Kalman-smoothed multi-person pose tracking.

``Tracker(...).update(poses, frame_index)`` turns each frame's :class:`posecore.types.Poses` into
:class:`posecore.types.Track` records with stable IDs, smoothed keypoints and predicted occluded joints.
:class:`FixedLagSmoother` re-estimates each frame's joints with a few later frames, for batch runs.
"""

from .smoother import FixedLagSmoother
from .tracker import Tracker, TrackerConfig

__all__ = ["FixedLagSmoother", "Tracker", "TrackerConfig"]
