"""Post-processing of segmentation probability maps, as in the report (section 3.3).

A probability map is thresholded, only its largest blob is kept and that blob's holes are
filled; the disc and cup masks are then merged into one REFUGE mask, with any cup pixel
outside the disc set to background. All functions are pure numpy / scipy / OpenCV.

Example:
    >>> import numpy as np
    >>> disc = clean_mask(np.full((4, 4), 0.9, dtype=np.float32))
    >>> cup = clean_mask(np.eye(4, dtype=np.float32))
    >>> merge_disc_cup(disc, cup)[0].tolist()
    [0, 128, 128, 128]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from funduskit.scoring.metrics import (
    BACKGROUND_VALUE,
    CUP_VALUE,
    RIM_VALUE,
    cdr_measures,
    disc_of,
)

DEFAULT_THRESHOLD = 0.5


def binarize(probability: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Pixels whose probability is at least ``threshold``.

    Args:
        probability: (H, W) float map in [0, 1].
    Returns:
        (H, W) bool mask.
    """
    return np.asarray(probability) >= threshold


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected blob of a binary mask (all False when the mask is empty).

    Args:
        mask: (H, W) bool.
    Returns:
        (H, W) bool, True only on the largest blob; ties go to the blob labelled first
        (top-most, then left-most).
    """
    return _largest_component(np.asarray(mask, dtype=bool))[0]


def _largest_component(mask: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice] | None]:
    """The largest 8-connected blob (OpenCV's labelling) and its bounding box as slices (None when
    the mask is empty). Only the box around the mask's pixels is labelled: outside it there is
    nothing to label, so the blobs, their order and the answer are those of the whole mask, at a
    fraction of the cost on a full-size photograph whose disc covers a few per cent of it."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros(mask.shape, dtype=bool), None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    columns = np.flatnonzero(mask[top:bottom].any(axis=0))
    left, right = int(columns[0]), int(columns[-1]) + 1
    occupied = np.ascontiguousarray(mask[top:bottom, left:right])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(occupied.view(np.uint8), connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = (int(v) for v in stats[largest, :4])
    blob = np.zeros(mask.shape, dtype=bool)
    blob[top:bottom, left:right] = labels == largest
    return blob, (slice(top + y, top + y + height), slice(left + x, left + x + width))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes (background regions not connected to the border) of a binary mask."""
    return ndimage.binary_fill_holes(np.asarray(mask, dtype=bool))


def clean_mask(probability: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Threshold, keep the largest blob, fill its holes: the report's post-processing.

    Args:
        probability: (H, W) float map in [0, 1].
    Returns:
        (H, W) bool mask, one hole-free blob or empty.
    """
    blob, box = _largest_component(binarize(probability, threshold))
    if box is not None:
        # Outside its bounding box there is only background, so the holes of the blob are the
        # holes of the crop: filling there is exact and much cheaper on a large photograph.
        blob[box] = fill_holes(blob[box])
    return blob


def merge_disc_cup(disc: np.ndarray, cup: np.ndarray) -> np.ndarray:
    """Merge binary disc and cup masks into a REFUGE mask.

    Args:
        disc, cup: (H, W) bool masks.
    Returns:
        (H, W) uint8: 0 = cup, 128 = disc rim, 255 = background. Cup pixels outside the disc are
        background.
    """
    disc = np.asarray(disc, dtype=bool)
    cup = np.asarray(cup, dtype=bool) & disc
    merged = np.full(disc.shape, BACKGROUND_VALUE, dtype=np.uint8)
    merged[disc] = RIM_VALUE
    merged[cup] = CUP_VALUE
    return merged


def postprocess_disc_cup(
    disc_probability: np.ndarray,
    cup_probability: np.ndarray,
    disc_threshold: float = DEFAULT_THRESHOLD,
    cup_threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """From the disc and cup probability maps (H, W) to the (H, W) uint8 REFUGE mask."""
    return merge_disc_cup(
        clean_mask(disc_probability, disc_threshold), clean_mask(cup_probability, cup_threshold)
    )


@dataclass(frozen=True)
class DiscCupMeasures:
    """Measures of one REFUGE mask, in original-image pixels.

    Attributes:
        vcdr: vertical cup-to-disc ratio by the official REFUGE definition.
        hcdr: horizontal cup-to-disc ratio (the same definition on rows).
        disc_area, cup_area: pixel counts.
        disc_centre_x, disc_centre_y: centroid of the disc, ``None`` when there is no disc.
    """

    vcdr: float
    hcdr: float
    disc_area: int
    cup_area: int
    disc_centre_x: float | None
    disc_centre_y: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def disc_cup_measures(merged: np.ndarray) -> DiscCupMeasures:
    """vCDR (official definition), hCDR, areas and disc centre of a (H, W) REFUGE mask."""
    x, y, width, height = cv2.boundingRect(disc_of(merged).view(np.uint8))
    # The cup (value 0) is part of the disc (value < 255), so the disc's box holds every measure.
    crop = merged[y : y + height, x : x + width]
    measures = cdr_measures(crop)
    if width:
        moments = cv2.moments(disc_of(crop).view(np.uint8), binaryImage=True)
        centre_x, centre_y = x + moments["m10"] / moments["m00"], y + moments["m01"] / moments["m00"]
    else:
        centre_x = centre_y = None
    return DiscCupMeasures(
        vcdr=float(measures["vertical_cdr"]),
        hcdr=float(measures["horizontal_cdr"]),
        disc_area=int(measures["disc_area"]),
        cup_area=int(measures["cup_area"]),
        disc_centre_x=centre_x,
        disc_centre_y=centre_y,
    )


def infer_eye_side(disc_x: float | None, fovea_x: float | None, *, min_separation: float = 1.0) -> str | None:
    """Which eye a macula-centred photograph shows, from the disc's side of the fovea.

    The optic disc lies nasal to the fovea; in a fundus photograph (the examiner's view) that is
    the image's right for a right eye and its left for a left eye.

    Args:
        disc_x, fovea_x: x coordinates in the same pixels.
        min_separation: below this horizontal distance the side is not decided.
    Returns:
        ``"right"``, ``"left"`` or ``None`` (a position missing, or the two too close).
    """
    if disc_x is None or fovea_x is None or abs(disc_x - fovea_x) < min_separation:
        return None
    return "right" if disc_x > fovea_x else "left"
