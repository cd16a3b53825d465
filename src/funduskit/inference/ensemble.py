"""Combining the outputs of ensemble members (and of test-time flips).

Every task's ensemble is combined by its plain mean, as in the report: probability maps are
averaged pixel-wise before post-processing, glaucoma probabilities are averaged, fovea
positions are averaged as decoded points in original-image pixels. The spread (population
standard deviation across members) is kept as a measure of agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_map(maps: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Pixel-wise mean of probability maps.

    Args:
        maps: N maps of the same shape (H, W), or an (N, H, W) array; N >= 1.
    Returns:
        (H, W) float32 mean.
    """
    stack = np.asarray(maps, dtype=np.float32)
    if stack.ndim < 1 or stack.shape[0] == 0:
        raise ValueError("mean_map needs at least one map")
    return stack.mean(axis=0, dtype=np.float32)


def mean_and_spread(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value) of N >= 1 scalars."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError("mean_and_spread needs at least one value")
    return float(array.mean()), float(array.std())


def mean_point(points: Sequence[Sequence[float]] | np.ndarray) -> tuple[tuple[float, float], float]:
    """Mean of N >= 1 points (x, y) and their spread.

    Returns:
        ((x, y), spread) where spread is the root-mean-square distance of the points to their
        mean, in the points' units (0 for one point).
    """
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if array.shape[0] == 0:
        raise ValueError("mean_point needs at least one point")
    centre = array.mean(axis=0)
    spread = float(np.sqrt(((array - centre) ** 2).sum(axis=1).mean()))
    return (float(centre[0]), float(centre[1])), spread
