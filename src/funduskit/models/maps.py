"""Resizing of probability maps between network sizes, shared by training and prediction.

The vessel generator's map feeds the disc, cup and fovea networks at their own input sizes; the
same function resizes it when their training data are cached and when ``funduskit predict`` runs,
so the networks see at prediction time the maps they were trained on. It takes torch tensors
(training, the torch backend) and numpy arrays (the exported networks' prediction path, which does
not import torch) and gives both the same numbers: torch's area mode is adaptive average pooling,
whose windows are reproduced here with an integral image, and torch's bilinear mode with
``align_corners=False`` with its own sample positions and weights (OpenCV's ``INTER_LINEAR``
differed by up to 4e-5; ``tests/test_maps.py`` checks both against torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["resize_maps"]

Maps = TypeVar("Maps", "Tensor", np.ndarray)


def resize_maps(maps: Maps, size: int) -> Maps:
    """(B, C, h, w) -> (B, C, size, size) float: area average when shrinking, bilinear
    (``align_corners=False``) when enlarging; returned unchanged when already that size.
    A numpy array comes back as a float32 numpy array, a tensor as a float tensor."""
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return maps
    if isinstance(maps, np.ndarray):
        return _resize_arrays(maps.astype(np.float32, copy=False), size)
    import torch.nn.functional as F  # noqa: N812 - torch's own name

    if size < maps.shape[-1]:
        return F.interpolate(maps.float(), size=(size, size), mode="area")
    return F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=False)


def _resize_arrays(maps: np.ndarray, size: int) -> np.ndarray:
    batch, channels, height, width = maps.shape
    planes = maps.reshape(batch * channels, height, width)
    if size < width:
        out = _adaptive_mean(_adaptive_mean(planes, size, axis=1), size, axis=2)
    else:
        out = _linear(_linear(planes, size, axis=1), size, axis=2)
    return out.reshape(batch, channels, size, size)


def _adaptive_mean(planes: np.ndarray, size: int, axis: int) -> np.ndarray:
    """torch's adaptive average pooling along one axis: output i averages inputs
    ``floor(i * n / size)`` to ``ceil((i + 1) * n / size)`` (exclusive)."""
    n = planes.shape[axis]
    index = np.arange(size)
    start = (index * n) // size
    end = -((-(index + 1) * n) // size)
    cumulative = np.cumsum(planes, axis=axis, dtype=np.float64)
    cumulative = np.concatenate([np.zeros_like(np.take(cumulative, [0], axis=axis)), cumulative], axis=axis)
    sums = np.take(cumulative, end, axis=axis) - np.take(cumulative, start, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = size
    return (sums / (end - start).reshape(shape)).astype(np.float32)


def _linear(planes: np.ndarray, size: int, axis: int) -> np.ndarray:
    """torch's linear interpolation (``align_corners=False``) along one axis: output i samples
    ``(i + 0.5) * n / size - 0.5`` (clamped at 0) between its two neighbours."""
    n = planes.shape[axis]
    source = np.maximum((np.arange(size, dtype=np.float32) + 0.5) * np.float32(n / size) - 0.5, 0)
    low = np.minimum(source.astype(np.int64), n - 1)
    high = np.minimum(low + 1, n - 1)
    shape = [1, 1, 1]
    shape[axis] = size
    weight = (source - low).astype(np.float32).reshape(shape)
    return np.take(planes, low, axis=axis) * (1 - weight) + np.take(planes, high, axis=axis) * weight
