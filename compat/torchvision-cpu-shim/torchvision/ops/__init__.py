"""Pure-PyTorch box operations with torchvision's signatures and semantics."""

from .boxes import batched_nms, box_area, box_iou, nms

__all__ = ["nms", "batched_nms", "box_iou", "box_area"]
