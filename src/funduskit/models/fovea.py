"""Fovea target encoding and decoding for the cell-grid localiser (detection-style offsets).

The network's input is split into ``grid x grid`` square cells of ``size / grid`` pixels. The
target has three maps: confidence (1 in the cell holding the fovea, 0 elsewhere), and the x and y
offsets of the fovea inside that cell, in [0, 1] (0 = the cell's left/top edge). Decoding takes
the most confident cell and adds its offsets (the report's post-processing).

Coordinates are continuous network-input pixels: ``x`` in [0, size] from the left edge of the
first column, the same frame for encoding and decoding, so the round trip is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["decode_fovea", "encode_fovea_target"]


def encode_fovea_target(xy: Sequence[float] | np.ndarray, size: int, grid: int) -> np.ndarray:
    """Training target for one fovea position.

    Args:
        xy: fovea ``(x, y)`` in network-input pixels.
        size: network input size S (square).
        grid: cells per side G (``S / 8`` for the fovea localiser).

    Returns:
        float32 array (3, G, G): confidence (one-hot), x offset, y offset (non-zero only in the
        confident cell; a loss on the offsets should be masked by the confidence channel).
        A position outside [0, S] or not finite (fovea cropped away by augmentation, or absent)
        gives all zeros: no cell holds the fovea.
    """
    target = np.zeros((3, grid, grid), dtype=np.float32)
    x, y = float(xy[0]), float(xy[1])
    if not (np.isfinite(x) and np.isfinite(y) and 0.0 <= x <= size and 0.0 <= y <= size):
        return target
    cell = size / grid
    col = min(int(x // cell), grid - 1)  # x == size belongs to the last cell, offset 1
    row = min(int(y // cell), grid - 1)
    target[0, row, col] = 1.0
    target[1, row, col] = x / cell - col
    target[2, row, col] = y / cell - row
    return target


def decode_fovea(maps: Tensor | np.ndarray, size: int) -> np.ndarray:
    """Fovea position(s) from the localiser's probability maps (``model.predict`` output).

    Args:
        maps: (3, G, G) or (B, 3, G, G) probabilities: confidence, x offset, y offset.
        size: network input size S.

    Returns:
        float64 array (2,) or (B, 2): ``(x, y)`` in network-input pixels, from the cell with the
        highest confidence plus its offsets (first such cell on ties).
    """
    values = _as_array(maps)
    batched = values.ndim == 4
    if not batched:
        values = values[None]
    if values.ndim != 4 or values.shape[1] != 3:
        raise ValueError(f"fovea maps must be (3, G, G) or (B, 3, G, G); got {tuple(_as_array(maps).shape)}")
    batch, _, rows, cols = values.shape
    best = values[:, 0].reshape(batch, -1).argmax(axis=1)
    row, col = best // cols, best % cols
    index = np.arange(batch)
    x = (col.astype(np.float32) + values[index, 1, row, col]) * np.float32(size / cols)
    y = (row.astype(np.float32) + values[index, 2, row, col]) * np.float32(size / rows)
    xy = np.stack([x, y], axis=-1).astype(np.float64)
    return xy if batched else xy[0]


def _as_array(maps: Tensor | np.ndarray) -> np.ndarray:
    """float32 numpy values of a tensor (any device) or an array."""
    if hasattr(maps, "detach"):  # a torch tensor
        return maps.detach().float().cpu().numpy()
    return np.asarray(maps, dtype=np.float32)
