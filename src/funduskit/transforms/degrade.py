"""Controlled degradations of fundus photographs, for calibrating and testing the quality gate
(:mod:`funduskit.inference.quality`, ``benchmarks/quality.py``, docs/quality.md).

Each takes an (H, W, 3) uint8 RGB photograph, the diameter D of its field of view in pixels (the
crop's side for a disc crop) and a strength index (0 mild, 1 moderate, 2 severe), and returns the
degraded photograph; strengths are relative to D, so that every camera gets the same degradation.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

STRENGTHS = ("mild", "moderate", "severe")
Degrade = Callable[[np.ndarray, float, int], np.ndarray]  # (image, fov diameter, strength index) -> image


def blur(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """Out of focus: albumentations' GaussianBlur at sigma = D / 512 x (1.5, 3, 6)."""
    import albumentations as A

    sigma = diameter / 512 * (1.5, 3.0, 6.0)[k]
    return A.GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1.0)(image=image)["image"]


def dark(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """Under-exposure: every value x (0.5, 0.3, 0.12)."""
    return np.clip(image.astype(np.float32) * (0.5, 0.3, 0.12)[k], 0, 255).astype(np.uint8)


def bright(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """Over-exposure: the retina's mean level raised to (0.6, 0.72, 0.85), clipped."""
    target = (0.6, 0.72, 0.85)[k]
    inside = image.max(axis=2) > 20
    level = float(image[inside].mean()) / 255 if inside.any() else 0.5
    return np.clip(image.astype(np.float32) * (target / max(level, 1e-3)), 0, 255).astype(np.uint8)


def glare(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """A saturated white patch (soft-edged but for the severe one) over (3, 10, 25) % of the retina."""
    share = (0.03, 0.10, 0.25)[k]
    height, width = image.shape[:2]
    layer = np.zeros((height, width), np.float32)
    radius = int(round(diameter / 2 * np.sqrt(share)))
    cv2.circle(layer, (width // 2 + int(diameter * 0.15), height // 2 - int(diameter * 0.1)), radius, 1.0, -1)
    if k < 2:
        layer = cv2.GaussianBlur(layer, (0, 0), max(1.0, diameter / 256))
    alpha = layer[..., None]
    return (image.astype(np.float32) * (1 - alpha) + 255 * alpha).astype(np.uint8)


def haze(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """Haze (cataract, a dirty lens): the retina blended with light grey at (0.35, 0.55, 0.8)."""
    alpha = (0.35, 0.55, 0.8)[k]
    grey = np.full_like(image, 200)
    inside = image.max(axis=2, keepdims=True) > 20  # haze on the retina, not the black surround
    hazy = cv2.addWeighted(image, 1 - alpha, grey, alpha, 0)
    return np.where(inside, hazy, image)


def shift(image: np.ndarray, diameter: float, k: int) -> np.ndarray:
    """Mis-centred: the photograph moved right by (0.3, 0.5, 0.7) x D and down by half that."""
    offset = int(round((0.3, 0.5, 0.7)[k] * diameter))
    matrix = np.float32([[1, 0, offset], [0, 1, offset // 2]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]))


#: The degradations by name.
DEGRADATIONS: dict[str, Degrade] = {"blur": blur, "dark": dark, "bright": bright, "glare": glare, "haze": haze,
                                    "shift": shift}
