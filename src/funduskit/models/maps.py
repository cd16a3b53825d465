"""Resizing of probability maps between network sizes, shared by training and prediction.

The vessel generator's map feeds the disc, cup and fovea networks at their own input sizes; the
same function resizes it when their training data are cached and when ``funduskit predict`` runs,
so the networks see at prediction time the maps they were trained on. It takes torch tensors
(training, the torch backend) and numpy arrays (the exported networks' prediction path, which does
not import torch) and gives both the same numbers: torch's area mode is adaptive average pooling,
whose windows are reproduced here as an averaging matrix, and torch's bilinear mode with
``align_corners=False`` as a matrix of its own sample positions and weights (OpenCV's ``INTER_LINEAR``
differed by up to 4e-5; ``tests/test_maps.py`` checks both against torch).
"""

from __future__ import annotations

import functools
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
    """(B, C, h, w) float32 -> (B, C, size, size): rows and columns each through a (size, n)
    interpolation matrix, ``W_rows @ plane @ W_cols.T`` (two matrix products: fast, and the same
    weights as torch's)."""
    mode = "area" if size < maps.shape[-1] else "bilinear"
    batch, channels, height, width = maps.shape
    rows, columns = _weights(height, size, mode), _weights(width, size, mode).T.copy()
    planes = [rows @ plane @ columns for plane in maps.reshape(batch * channels, height, width)]
    return np.stack(planes).reshape(batch, channels, size, size)


@functools.lru_cache(maxsize=64)
def _weights(n: int, size: int, mode: str) -> np.ndarray:
    """(size, n) float32 matrix of torch's 1-D interpolation from n to size samples.

    ``"area"`` (adaptive average pooling): output i averages inputs ``floor(i * n / size)`` to
    ``ceil((i + 1) * n / size)`` (exclusive). ``"bilinear"`` (``align_corners=False``): output i
    samples ``(i + 0.5) * n / size - 0.5`` (clamped at 0) between its two neighbours."""
    weights = np.zeros((size, n), np.float64)
    index = np.arange(size)
    if mode == "area":
        start, end = (index * n) // size, -((-(index + 1) * n) // size)
        for row, (first, last) in enumerate(zip(start, end)):
            weights[row, first:last] = 1.0 / (last - first)
    else:
        source = np.maximum((index.astype(np.float32) + 0.5) * np.float32(n / size) - 0.5, 0)
        low = np.minimum(source.astype(np.int64), n - 1)
        high = np.minimum(low + 1, n - 1)
        fraction = (source - low).astype(np.float32)
        np.add.at(weights, (index, low), 1 - fraction)
        np.add.at(weights, (index, high), fraction)
    return weights.astype(np.float32)
