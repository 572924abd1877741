"""Codecs: one object turns keypoints into training targets (``encode``) and network outputs back
into keypoints (``decode``), so training and inference cannot drift apart.

Pixel convention (used everywhere in posecore: crops, codecs, models, feature sampling)
--------------------------------------------------------------------------------------
Pixel centres sit at integer coordinates: pixel ``i`` covers ``[i - 0.5, i + 0.5]``, so an image
``W`` pixels wide spans ``[-0.5, W - 0.5]``. Two grids covering the same area (an input crop of
``W`` pixels and its heatmap of ``w`` pixels) are aligned at their outer edges::

    x_heatmap = (x_input + 0.5) * w / W - 0.5

This is also what ``torch.nn.functional.grid_sample(..., align_corners=False)`` means by its
normalised coordinate ``u = (x + 0.5) * 2 / W - 1``, which is the same number for every resolution
of the same area: a joint in input-crop pixels samples any feature map of the crop without
further bookkeeping. :mod:`posecore.codecs.grid` holds these conversions.
"""

from .grid import heatmap_to_input, input_to_heatmap, input_to_normalized, normalized_to_input
from .heatmap import HeatmapCodec
from .integral import IntegralCodec

__all__ = [
    "HeatmapCodec",
    "IntegralCodec",
    "heatmap_to_input",
    "input_to_heatmap",
    "input_to_normalized",
    "normalized_to_input",
]
