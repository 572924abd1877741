"""Transform steps that move the image, the box and every keypoint together, and their composition."""

from __future__ import annotations

from .base import Compose, Sample, Step
from .geometry import AffineCrop, CenterScale, HalfBody, RandomFlip, RandomScaleRotation
from .occlusion import InstancePaste, InstancePool, LimbJointAugmentation, MaskJoints
from .targets import EncodeTargets, to_input

__all__ = [
    "AffineCrop", "CenterScale", "Compose", "EncodeTargets", "HalfBody", "InstancePaste", "InstancePool",
    "LimbJointAugmentation", "MaskJoints", "RandomFlip", "RandomScaleRotation", "Sample", "Step", "to_input",
]
