"""The REFUGE metrics on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from funduskit.scoring.metrics import (
    CDR_EPS,
    absolute_error,
    auroc,
    cdr_measures,
    cup_of,
    dice,
    disc_of,
    fovea_distance,
    horizontal_diameter,
    leaderboard,
    ranks,
    segmentation_scores,
    sensitivity_at_specificity,
    vertical_cdr,
    vertical_diameter,
)


def box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    region = np.zeros(shape, bool)
    region[rows, cols] = True
    return region


def refuge_mask(shape: tuple[int, int], disc: tuple[slice, slice], cup: tuple[slice, slice] | None) -> np.ndarray:
    mask = np.full(shape, 255, np.uint8)
    mask[disc] = 128
    if cup is not None:
        mask[cup] = 0
    return mask


# --- Dice ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        # 3 pixels each, 2 shared: 2 * 2 / (3 + 3)
        (box((4, 4), slice(0, 1), slice(0, 3)), box((4, 4), slice(0, 1), slice(1, 4)), 4 / 6),
        # 2x2 inside 4x4: 2 * 4 / (4 + 16)
        (box((4, 4), slice(1, 3), slice(1, 3)), box((4, 4), slice(0, 4), slice(0, 4)), 8 / 20),
        (box((4, 4), slice(0, 2), slice(0, 2)), box((4, 4), slice(0, 2), slice(0, 2)), 1.0),
        (box((4, 4), slice(0, 2), slice(0, 2)), box((4, 4), slice(2, 4), slice(2, 4)), 0.0),
        (np.zeros((4, 4), bool), box((4, 4), slice(2, 4), slice(2, 4)), 0.0),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), 1.0),  # both empty: defined as 1
    ],
)
def test_dice_hand_computed(pred: np.ndarray, ref: np.ndarray, expected: float) -> None:
    assert dice(pred, ref) == pytest.approx(expected)
    assert dice(ref, pred) == pytest.approx(expected)


def test_dice_accepts_0_1_integers_and_refuses_other_shapes() -> None:
    a = np.array([[1, 1], [0, 0]], np.uint8)
    b = np.array([[1, 0], [0, 0]], np.uint8)
    assert dice(a, b) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_disc_and_cup_from_refuge_values() -> None:
    mask = np.array([[255, 128, 0], [0, 128, 255]], np.uint8)
    np.testing.assert_array_equal(disc_of(mask), [[False, True, True], [True, True, False]])
    np.testing.assert_array_equal(cup_of(mask), [[False, False, True], [True, False, False]])


# --- diameters and CDR -----------------------------------------------------------------------


def test_vertical_diameter_is_largest_column_count_not_bbox_height() -> None:
    # a slanted band: row r holds columns r .. r+2, so the bounding box is 4 rows tall but no
    # column holds more than 3 pixels (column counts 1, 2, 3, 3, 2, 1)
    slanted = np.zeros((4, 6), bool)
    for row in range(4):
        slanted[row, row : row + 3] = True
    rows = np.flatnonzero(slanted.any(axis=1))
    assert rows.max() - rows.min() + 1 == 4
    assert vertical_diameter(slanted) == 3
    assert horizontal_diameter(slanted) == 3


def test_vertical_diameter_ignores_gaps_within_a_column() -> None:
    # two blobs in one column: 2 + 3 pixels, the column count is 5 although no run is longer than 3
    region = np.zeros((10, 3), bool)
    region[0:2, 1] = True
    region[6:9, 1] = True
    assert vertical_diameter(region) == 5
    assert vertical_diameter(np.zeros((5, 5), bool)) == 0


def test_vertical_cdr_hand_computed() -> None:
    mask = refuge_mask((8, 8), (slice(1, 5), slice(1, 6)), (slice(2, 4), slice(2, 4)))  # disc 4 tall, cup 2
    assert vertical_cdr(mask) == pytest.approx(2 / (4 + CDR_EPS), abs=0)
    assert vertical_cdr(mask) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (refuge_mask((6, 6), (slice(1, 5), slice(1, 5)), None), 0.0),  # no cup
        (np.full((6, 6), 255, np.uint8), 0.0),  # no disc at all: 0 / (0 + 1e-7)
        (refuge_mask((6, 6), (slice(1, 5), slice(1, 5)), (slice(1, 5), slice(1, 5))), 4 / (4 + CDR_EPS)),  # all cup
    ],
)
def test_vertical_cdr_edge_cases(mask: np.ndarray, expected: float) -> None:
    assert vertical_cdr(mask) == pytest.approx(expected, abs=1e-12)


def test_cdr_measures_hand_computed() -> None:
    # disc rows 1-4 (4 tall), columns 1-6 (6 wide); cup rows 2-3, columns 3-4 (2 x 2)
    mask = refuge_mask((8, 9), (slice(1, 5), slice(1, 7)), (slice(2, 4), slice(3, 5)))
    measures = cdr_measures(mask)
    assert measures["vertical_disc_diameter"] == 4
    assert measures["vertical_cup_diameter"] == 2
    assert measures["vertical_cdr"] == pytest.approx(0.5)
    assert measures["vertical_cdr"] == vertical_cdr(mask)
    assert measures["horizontal_disc_diameter"] == 6
    assert measures["horizontal_cup_diameter"] == 2
    assert measures["horizontal_cdr"] == pytest.approx(1 / 3)
    assert measures["disc_area"] == 24
    assert measures["cup_area"] == 4
    assert measures["area_cdr"] == pytest.approx(4 / 24)


def test_segmentation_scores_of_a_shifted_and_eroded_prediction() -> None:
    shape = (40, 60)
    reference = refuge_mask(shape, (slice(10, 30), slice(20, 40)), (slice(15, 25), slice(25, 35)))
    # disc moved 5 columns right (overlap 20 x 15), cup eroded by one pixel on every side (8 x 8)
    predicted = refuge_mask(shape, (slice(10, 30), slice(25, 45)), (slice(16, 24), slice(26, 34)))
    scores = segmentation_scores(predicted, reference)
    assert scores.disc_dice == pytest.approx(2 * 300 / (400 + 400))
    assert scores.cup_dice == pytest.approx(2 * 64 / (100 + 64))
    assert scores.vcdr_ref == pytest.approx(10 / 20)
    assert scores.vcdr_pred == pytest.approx(8 / 20)
    assert scores.vcdr_error == pytest.approx(0.1)
    assert absolute_error(0.4, 0.5) == pytest.approx(0.1)


# --- classification ----------------------------------------------------------------------------


def test_auroc_hand_computed() -> None:
    # positive-negative pairs ranked correctly: (0.35 > 0.1), (0.8 > 0.1), (0.8 > 0.4); wrong: 0.35 < 0.4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.2, 0.9]) == 1.0
    assert auroc([0, 1], [0.9, 0.2]) == 0.0


def test_auroc_and_sensitivity_undefined_with_one_class() -> None:
    assert math.isnan(auroc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert math.isnan(sensitivity_at_specificity([0, 0], [0.1, 0.5]))


def test_classification_metrics_refuse_bad_labels() -> None:
    with pytest.raises(ValueError, match="0 .*or 1"):
        auroc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        sensitivity_at_specificity([0, 1, 1], [0.1, 0.2])


# 4 positives, 10 negatives; a positive and a negative tie at 0.5. The ROC curve through its
# thresholds 0.9, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1 visits (FPR, TPR) = (0, .25), (0, .5),
# (.1, .5), (.2, .75) [the tie: a diagonal], (.3, .75), (.4, .75), (.4, 1), (1, 1).
TIED_LABELS = [1, 1, 1, 1] + [0] * 10
TIED_SCORES = [0.9, 0.8, 0.5, 0.2] + [0.7, 0.5, 0.4, 0.3] + [0.1] * 6


@pytest.mark.parametrize(
    ("specificity", "expected"),
    [
        (0.85, 0.625),  # FPR 0.15, half-way along the diagonal from (.1, .5) to (.2, .75)
        (0.875, 0.5625),  # FPR 0.125, a quarter of the way
        (0.95, 0.5),  # FPR 0.05, on the flat segment from (0, .5) to (.1, .5)
        (1.0, 0.5),  # FPR 0, where the curve climbs (0, 0) -> (0, .5): the top is taken
        (0.6, 1.0),  # FPR 0.4, the top of the vertical step (.4, .75) -> (.4, 1)
        (0.0, 1.0),
    ],
)
def test_sensitivity_at_specificity_interpolates_the_roc_curve(specificity: float, expected: float) -> None:
    assert sensitivity_at_specificity(TIED_LABELS, TIED_SCORES, specificity) == pytest.approx(expected)


def test_sensitivity_without_ties_is_the_staircase_value() -> None:
    # 20 negatives: FPR steps of 0.05. Ranked: 0.99 P, 0.98 P, 0.97 N, 0.95 N, 0.94 P, 0.93 N,
    # then the other 17 negatives (0.50 .. 0.34), then 0.30 P. ROC vertices: (0, .5), (.05, .5),
    # (.1, .5), (.1, .75), (.15, .75), ..., (1, .75), (1, 1).
    negatives = [0.97, 0.95, 0.93] + [0.5 - 0.01 * i for i in range(17)]
    positives = [0.99, 0.98, 0.94, 0.3]
    labels = [1] * 4 + [0] * 20
    scores = positives + negatives
    assert sensitivity_at_specificity(labels, scores) == pytest.approx(0.75)  # FPR .15: flat at .75
    assert sensitivity_at_specificity(labels, scores, 0.96) == pytest.approx(0.5)  # FPR .04: flat at .5
    # FPR 0.1 is a vertical step (.5 -> .75): the top, although 1 - 0.9 rounds to just below 0.1
    assert sensitivity_at_specificity(labels, scores, 0.9) == pytest.approx(0.75)
    # one more positive tied with nothing at 0.6 adds a vertical step at FPR 0.15, which is taken
    assert sensitivity_at_specificity(labels + [1], scores + [0.6]) == pytest.approx(0.8)


def test_sensitivity_at_specificity_refuses_impossible_specificity() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sensitivity_at_specificity([0, 1], [0.1, 0.9], 1.5)


# --- fovea -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [((13, 24), (10, 20), 5.0), ((10.5, 20), (10.5, 20), 0.0), ((0, 0), (-6, 8), 10.0)],
)
def test_fovea_distance(pred: tuple[float, float], ref: tuple[float, float], expected: float) -> None:
    assert fovea_distance(pred, ref) == pytest.approx(expected)


# --- leaderboard -------------------------------------------------------------------------------


def test_ranks_share_ties_and_put_nan_last() -> None:
    assert ranks([0.9, 0.8, 0.9], higher_is_better=True).tolist() == [1, 3, 1]
    assert ranks([0.2, 0.1, math.nan], higher_is_better=False).tolist() == [2, 1, 3]


def test_leaderboard_sums_segmentation_ranks() -> None:
    summaries = {
        # cup rank 1, disc rank 3, vCDR rank 2 -> 6
        "alpha": {"mean_cup_dice": 0.90, "mean_disc_dice": 0.94, "mean_vcdr_error": 0.040, "auroc": 0.95},
        # cup 2, disc 1, vCDR 1 -> 4 (best)
        "beta": {"mean_cup_dice": 0.88, "mean_disc_dice": 0.96, "mean_vcdr_error": 0.035, "auroc": 0.90},
        # cup 3, disc 2, vCDR 3 -> 8; no classification part: AUROC ranked last
        "gamma": {"mean_cup_dice": 0.80, "mean_disc_dice": 0.95, "mean_vcdr_error": 0.060, "auroc": None},
    }
    rows = leaderboard(summaries)
    assert [row["name"] for row in rows] == ["beta", "alpha", "gamma"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["alpha"]["segmentation_score"] == 6
    assert by_name["beta"]["segmentation_score"] == 4
    assert by_name["gamma"]["segmentation_score"] == 8
    assert [by_name[n]["segmentation_rank"] for n in ("beta", "alpha", "gamma")] == [1, 2, 3]
    assert by_name["alpha"]["auroc_rank"] == 1
    assert by_name["gamma"]["auroc_rank"] == 3
    assert by_name["beta"]["mean_fovea_distance_rank"] == 1  # nobody has a fovea part: all tie
