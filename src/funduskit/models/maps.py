"""Resizing of probability maps between network sizes, shared by training and prediction.

The vessel generator's map feeds the disc, cup and fovea networks at their own input sizes; the
same function resizes it when their training data are cached and when ``funduskit predict`` runs,
so the networks see at prediction time the maps they were trained on.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["resize_maps"]


def resize_maps(maps: Tensor, size: int) -> Tensor:
    """(B, C, h, w) -> (B, C, size, size) float: area average when shrinking, bilinear
    (``align_corners=False``) when enlarging; returned unchanged when already that size."""
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return maps
    if size < maps.shape[-1]:
        return F.interpolate(maps.float(), size=(size, size), mode="area")
    return F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=False)
