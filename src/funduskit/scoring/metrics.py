"""The official REFUGE metrics, as pure functions of numpy arrays.

These follow the REFUGE challenge's own evaluation code (Orlando et al., Medical Image Analysis
2020, ``refuge-evaluation``): Dice of the optic disc and cup, the vertical cup-to-disc ratio (vCDR)
and its absolute error, AUROC and sensitivity at 85 % specificity of the glaucoma probabilities,
and the Euclidean distance of the fovea. ``docs/evaluation.md`` gives the formulas and the edge
cases chosen where the official code divides by zero.

Masks follow the REFUGE convention: a ``(H, W)`` uint8 array with 0 = cup, 128 = disc rim,
255 = background, so ``disc = mask < 255`` and ``cup = mask == 0``.

Example:
    >>> import numpy as np
    >>> mask = np.full((6, 6), 255, np.uint8)
    >>> mask[1:5, 1:5] = 128          # disc: 4 rows tall
    >>> mask[2:4, 2:4] = 0            # cup: 2 rows tall
    >>> round(vertical_cdr(mask), 6)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: Added to the disc diameter so that a mask without a disc gives vCDR 0 (official REFUGE code).
CDR_EPS = 1e-7
#: The specificity at which REFUGE reports sensitivity.
REFERENCE_SPECIFICITY = 0.85
#: REFUGE mask values.
CUP_VALUE, RIM_VALUE, BACKGROUND_VALUE = 0, 128, 255
REFUGE_MASK_VALUES = (CUP_VALUE, RIM_VALUE, BACKGROUND_VALUE)


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


def disc_of(mask: np.ndarray) -> np.ndarray:
    """The optic disc (rim and cup) of a REFUGE mask.

    Args:
        mask: ``(H, W)`` uint8 REFUGE mask (0 = cup, 128 = rim, 255 = background).

    Returns:
        ``(H, W)`` bool, ``mask < 255``.
    """
    return np.asarray(mask) < BACKGROUND_VALUE


def cup_of(mask: np.ndarray) -> np.ndarray:
    """The optic cup of a REFUGE mask: ``(H, W)`` uint8 -> ``(H, W)`` bool, ``mask == 0``."""
    return np.asarray(mask) == CUP_VALUE


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice coefficient ``2 |A ∩ B| / (|A| + |B|)`` of two binary masks.

    Args:
        pred: ``(H, W)`` bool (or 0/1) predicted region.
        ref: ``(H, W)`` bool (or 0/1) reference region, same shape.

    Returns:
        Dice in [0, 1]. When both masks are empty the prediction is exactly right and the result
        is 1.0 (the official REFUGE code would divide 0 by 0 here; REFUGE references always
        contain a disc and a cup, so this choice never changes an official score).

    Raises:
        ValueError: the shapes differ.

    Example:
        >>> a = np.zeros((4, 4), bool); a[0, :3] = True
        >>> b = np.zeros((4, 4), bool); b[0, 1:] = True
        >>> round(dice(a, b), 4)   # 2 * 2 / (3 + 3)
        0.6667
    """
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"dice: shapes differ, prediction {pred.shape} vs reference {ref.shape}")
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def vertical_diameter(region: np.ndarray) -> int:
    """Vertical diameter of a region: the largest number of foreground pixels in one column.

    This is the official REFUGE definition, ``max(sum(region, axis=0))``; it is not the
    bounding-box height (a slanted or curved region has a smaller vertical diameter than its
    bounding box is tall).

    Args:
        region: ``(H, W)`` bool.

    Returns:
        Pixels; 0 for an empty region.
    """
    region = np.asarray(region, dtype=bool)
    if region.size == 0:
        return 0
    return int(region.sum(axis=0).max())


def horizontal_diameter(region: np.ndarray) -> int:
    """Horizontal diameter: the largest number of foreground pixels in one row of ``(H, W)`` bool."""
    region = np.asarray(region, dtype=bool)
    if region.size == 0:
        return 0
    return int(region.sum(axis=1).max())


def vertical_cdr(mask: np.ndarray) -> float:
    """Vertical cup-to-disc ratio of a REFUGE mask, ``cup diameter / (disc diameter + 1e-7)``.

    Args:
        mask: ``(H, W)`` uint8 REFUGE mask (0 = cup, 128 = rim, 255 = background).

    Returns:
        The vCDR; 0.0 when the mask has no cup (and when it has no disc at all).
    """
    return vertical_diameter(cup_of(mask)) / (vertical_diameter(disc_of(mask)) + CDR_EPS)


def absolute_error(predicted: float, reference: float) -> float:
    """``|predicted - reference|``, the per-image vCDR error."""
    return abs(float(predicted) - float(reference))


def cdr_measures(mask: np.ndarray) -> dict[str, float]:
    """Cup and disc measurements of a REFUGE mask, for reports.

    Args:
        mask: ``(H, W)`` uint8 REFUGE mask.

    Returns:
        ``vertical_cup_diameter``, ``vertical_disc_diameter``, ``vertical_cdr``,
        ``horizontal_cup_diameter``, ``horizontal_disc_diameter``, ``horizontal_cdr``
        (diameters in pixels, ratios with the same ``+ 1e-7`` as :func:`vertical_cdr`),
        ``cup_area``, ``disc_area`` (pixels) and ``area_cdr`` (cup area / disc area).
    """
    cup, disc = cup_of(mask), disc_of(mask)
    v_cup, v_disc = vertical_diameter(cup), vertical_diameter(disc)
    h_cup, h_disc = horizontal_diameter(cup), horizontal_diameter(disc)
    cup_area, disc_area = int(cup.sum()), int(disc.sum())
    return {
        "vertical_cup_diameter": float(v_cup),
        "vertical_disc_diameter": float(v_disc),
        "vertical_cdr": v_cup / (v_disc + CDR_EPS),
        "horizontal_cup_diameter": float(h_cup),
        "horizontal_disc_diameter": float(h_disc),
        "horizontal_cdr": h_cup / (h_disc + CDR_EPS),
        "cup_area": float(cup_area),
        "disc_area": float(disc_area),
        "area_cdr": cup_area / (disc_area + CDR_EPS),
    }


@dataclass(frozen=True)
class SegmentationScores:
    """REFUGE scores of one predicted mask against its reference."""

    disc_dice: float
    cup_dice: float
    vcdr_pred: float
    vcdr_ref: float

    @property
    def vcdr_error(self) -> float:
        return absolute_error(self.vcdr_pred, self.vcdr_ref)


def segmentation_scores(pred_mask: np.ndarray, ref_mask: np.ndarray) -> SegmentationScores:
    """Disc Dice, cup Dice and both vCDRs of one ``(H, W)`` REFUGE mask against its reference."""
    return SegmentationScores(
        disc_dice=dice(disc_of(pred_mask), disc_of(ref_mask)),
        cup_dice=dice(cup_of(pred_mask), cup_of(ref_mask)),
        vcdr_pred=vertical_cdr(pred_mask),
        vcdr_ref=vertical_cdr(ref_mask),
    )


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _labels_and_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (no glaucoma) or 1 (glaucoma)")
    return labels, scores


def _has_both_classes(labels: np.ndarray) -> bool:
    return bool(labels.size) and 0 < labels.sum() < labels.size


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of glaucoma scores (``sklearn.metrics.roc_auc_score``).

    Args:
        labels: ``(N,)`` 0/1 reference labels (1 = glaucoma).
        scores: ``(N,)`` predicted glaucoma probabilities (any monotone score works).

    Returns:
        AUROC in [0, 1]; ``nan`` when the labels hold only one class (AUROC is undefined).
    """
    from sklearn.metrics import (
        roc_auc_score,  # imported here: scikit-learn takes a second to import
    )

    labels, scores = _labels_and_scores(labels, scores)
    if not _has_both_classes(labels):
        return math.nan
    return float(roc_auc_score(labels, scores))


def sensitivity_at_specificity(
    labels: ArrayLike, scores: ArrayLike, specificity: float = REFERENCE_SPECIFICITY
) -> float:
    """Sensitivity at a given specificity, by linear interpolation of the ROC curve.

    As in the official REFUGE evaluation: the ROC curve from ``sklearn.metrics.roc_curve`` is
    interpolated linearly, and the true-positive rate is read at false-positive rate
    ``1 - specificity`` (``np.interp``). Where the curve is vertical at exactly that rate (a
    threshold that adds positives only), the top of the segment, i.e. the best sensitivity
    reachable at that specificity, is returned; "exactly" allows for floating-point rounding
    (``1 - 0.9`` is ``0.0999...98``, which would otherwise fall just before the step).

    On a curve without tied scores the ROC is a staircase and the result is the sensitivity of
    the last threshold whose specificity is at least ``specificity``; tied positive and negative
    scores make diagonal segments, where the interpolation matters.

    Args:
        labels: ``(N,)`` 0/1 reference labels (1 = glaucoma).
        scores: ``(N,)`` predicted glaucoma probabilities.
        specificity: the reference specificity, 0.85 in REFUGE.

    Returns:
        Sensitivity in [0, 1]; ``nan`` when the labels hold only one class.

    Example:
        >>> # a positive tied with a negative at 0.5: ROC from (0, 0.5) diagonally to (0.25, 1)
        >>> sensitivity_at_specificity([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.5, 0.5, 0.9], 0.875)
        0.75
    """
    from sklearn.metrics import roc_curve

    if not 0.0 <= specificity <= 1.0:
        raise ValueError(f"specificity must lie in [0, 1], got {specificity}")
    labels, scores = _labels_and_scores(labels, scores)
    if not _has_both_classes(labels):
        return math.nan
    fpr, tpr, _ = roc_curve(labels, scores)
    target = 1.0 - specificity
    # ``1 - 0.9`` is 0.09999999999999998: snap to a vertex of the curve that the target only
    # misses by rounding, so the result does not depend on which side rounding fell
    at_vertex = np.isclose(fpr, target, rtol=0.0, atol=1e-9)
    if at_vertex.any():
        return float(tpr[at_vertex].max())
    return float(np.interp(target, fpr, tpr))


# --------------------------------------------------------------------------------------------
# Fovea
# --------------------------------------------------------------------------------------------


def fovea_distance(pred_xy: Sequence[float], ref_xy: Sequence[float]) -> float:
    """Euclidean distance in pixels between a predicted and a reference fovea ``(x, y)``.

    Example:
        >>> fovea_distance((13, 24), (10, 20))
        5.0
    """
    (px, py), (rx, ry) = pred_xy, ref_xy
    return float(math.hypot(float(px) - float(rx), float(py) - float(ry)))


# --------------------------------------------------------------------------------------------
# Leaderboard
# --------------------------------------------------------------------------------------------

#: Summary keys a leaderboard ranks on, with whether a higher value is better.
LEADERBOARD_METRICS: dict[str, bool] = {
    "mean_cup_dice": True,
    "mean_disc_dice": True,
    "mean_vcdr_error": False,
    "auroc": True,
    "mean_fovea_distance": False,
}
SEGMENTATION_RANKED = ("mean_cup_dice", "mean_disc_dice", "mean_vcdr_error")


def ranks(values: ArrayLike, *, higher_is_better: bool) -> np.ndarray:
    """1-based ranks of ``(N,)`` values; ties share the best rank, ``nan`` ranks last.

    Example:
        >>> ranks([0.9, 0.8, 0.9], higher_is_better=True).tolist()
        [1, 3, 1]
    """
    values = np.asarray(values, dtype=float).ravel()
    keyed = -values if higher_is_better else values.copy()
    keyed[np.isnan(keyed)] = np.inf
    # rank = 1 + how many values are strictly better
    return np.searchsorted(np.sort(keyed), keyed, side="left") + 1


def leaderboard(summaries: Mapping[str, Mapping[str, float | None]]) -> list[dict[str, object]]:
    """Rank several submissions the REFUGE way.

    Segmentation score = rank on mean cup Dice + rank on mean disc Dice + rank on mean vCDR
    error (lower is better); classification is ranked on AUROC and fovea on mean distance.

    Args:
        summaries: submission name -> its metrics (the ``metrics`` of
            :class:`funduskit.scoring.evaluate.EvaluationResult`; keys of :data:`LEADERBOARD_METRICS`,
            missing or ``None`` = task not submitted, ranked last).

    Returns:
        One dict per submission, best segmentation score first: ``name``, ``<metric>_rank``
        for each ranked metric, ``segmentation_score`` (sum of the three segmentation ranks)
        and ``segmentation_rank``.
    """
    names = list(summaries)
    rows: list[dict[str, object]] = [{"name": name} for name in names]
    for key, higher_is_better in LEADERBOARD_METRICS.items():
        values = [_as_float(summaries[name].get(key)) for name in names]
        for row, rank in zip(rows, ranks(values, higher_is_better=higher_is_better)):
            row[f"{key}_rank"] = int(rank)
    scores = [sum(int(row[f"{key}_rank"]) for key in SEGMENTATION_RANKED) for row in rows]  # type: ignore[arg-type]
    for row, score, rank in zip(rows, scores, ranks(scores, higher_is_better=False)):
        row["segmentation_score"] = score
        row["segmentation_rank"] = int(rank)
    return sorted(rows, key=lambda row: (row["segmentation_rank"], names.index(str(row["name"]))))


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)
