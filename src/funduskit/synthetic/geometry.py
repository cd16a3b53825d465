"""Small planar-geometry helpers of the synthetic generator (pure numpy, no randomness).

Contours are ``(K, 2)`` float arrays of ``(x, y)`` image points; polar radius functions are
``(K,)`` arrays sampled at the angles of :func:`polar_angles`.
"""

from __future__ import annotations

import numpy as np

CONTOUR_POINTS = 256


def polar_angles(count: int = CONTOUR_POINTS) -> np.ndarray:
    """``(count,)`` angles in radians, evenly spaced over ``[0, 2 pi)``; 0 = +x, pi/2 = +y (down)."""
    return np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)


def ellipse_radius(angles: np.ndarray, semi_x: float, semi_y: float, tilt: float) -> np.ndarray:
    """Distance from an ellipse's centre to its boundary along each angle, ``(K,)``.

    ``semi_x`` and ``semi_y`` are the semi-axes before the ellipse is turned by ``tilt`` radians.
    """
    local = angles - tilt
    return semi_x * semi_y / np.sqrt((semi_y * np.cos(local)) ** 2 + (semi_x * np.sin(local)) ** 2)


def polar_to_contour(center: tuple[float, float], radius: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``(K, 2)`` boundary points of a star-shaped region given by its radius per angle."""
    return np.stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)], axis=1)


def radius_towards(contour: np.ndarray, center: tuple[float, float], angles: np.ndarray) -> np.ndarray:
    """Radius of a star-shaped ``contour`` seen from ``center`` (inside it), at each of ``angles``."""
    offset = contour - np.asarray(center)
    contour_angles = np.arctan2(offset[:, 1], offset[:, 0]) % (2.0 * np.pi)
    contour_radius = np.hypot(offset[:, 0], offset[:, 1])
    order = np.argsort(contour_angles)
    return np.interp(angles % (2.0 * np.pi), contour_angles[order], contour_radius[order], period=2.0 * np.pi)


def vertical_extent(contour: np.ndarray) -> float:
    """Height of a contour's bounding box, the polygon analogue of the REFUGE vertical diameter."""
    return float(contour[:, 1].max() - contour[:, 1].min())


def smooth_curve(control: np.ndarray, step: float) -> np.ndarray:
    """A Catmull-Rom curve through ``control`` ``(M, 2)``, resampled every ``step`` pixels, ``(N, 2)``."""
    if len(control) < 2:
        return control.astype(np.float64)
    padded = np.vstack([2 * control[0] - control[1], control, 2 * control[-1] - control[-2]])
    t = np.linspace(0.0, 1.0, 24, endpoint=False)[:, None]
    pieces = []
    for k in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[k - 1], padded[k], padded[k + 1], padded[k + 2]
        pieces.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    pieces.append(control[-1:])
    dense = np.vstack(pieces)
    return resample_polyline(dense, step)


def resample_polyline(points: np.ndarray, step: float) -> np.ndarray:
    """Points ``(N, 2)`` spaced ``step`` apart along the polyline ``points`` (ends kept)."""
    arc = arc_length(points)
    if arc[-1] <= step:
        return points[[0, -1]].astype(np.float64)
    samples = np.linspace(0.0, arc[-1], max(2, int(round(arc[-1] / step)) + 1))
    return np.stack([np.interp(samples, arc, points[:, 0]), np.interp(samples, arc, points[:, 1])], axis=1)


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative length ``(N,)`` along a polyline ``(N, 2)``, starting at 0."""
    steps = np.hypot(*np.diff(points, axis=0).T)
    return np.concatenate([[0.0], np.cumsum(steps)])


def unit_normals(points: np.ndarray) -> np.ndarray:
    """Left-hand unit normals ``(N, 2)`` of a polyline ``(N, 2)`` (central differences)."""
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
