"""Post-processing and ensemble combination on small hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from funduskit.inference.ensemble import mean_and_spread, mean_map, mean_point
from funduskit.inference.postprocess import (
    binarize,
    clean_mask,
    disc_cup_measures,
    fill_holes,
    infer_eye_side,
    keep_largest_component,
    merge_disc_cup,
    postprocess_disc_cup,
)
from funduskit.scoring.metrics import cup_of, disc_of


def _mask(rows: list[str]) -> np.ndarray:
    """A bool mask from rows of '#' (True) and '.' (False)."""
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.5, [False, True, True, True]), (0.7, [False, False, True, True]), (0.95, [False] * 4)],
)
def test_binarize_keeps_pixels_at_or_above_threshold(threshold: float, expected: list[bool]) -> None:
    probability = np.array([[0.2, 0.5, 0.7, 0.9]], dtype=np.float32)
    assert binarize(probability, threshold)[0].tolist() == expected


def test_keep_largest_component_drops_smaller_blobs() -> None:
    mask = _mask(
        [
            "##....",
            "##..##",
            "....##",
            "#...##",
        ]
    )
    expected = _mask(
        [
            "......",
            "....##",
            "....##",
            "....##",
        ]
    )
    np.testing.assert_array_equal(keep_largest_component(mask), expected)


def test_keep_largest_component_uses_8_connectivity() -> None:
    # A diagonal line is one blob under 8-connectivity and beats the 2-pixel blob.
    mask = _mask(
        [
            "#.....",
            ".#..##",
            "..#...",
            "...#..",
        ]
    )
    expected = _mask(
        [
            "#.....",
            ".#....",
            "..#...",
            "...#..",
        ]
    )
    np.testing.assert_array_equal(keep_largest_component(mask), expected)


def test_keep_largest_component_of_empty_mask_is_empty() -> None:
    result = keep_largest_component(np.zeros((3, 5), dtype=bool))
    assert result.shape == (3, 5) and result.dtype == bool and not result.any()


def test_fill_holes_fills_enclosed_background_only() -> None:
    ring = _mask(
        [
            "#####.",
            "#...#.",
            "#.#.#.",
            "#####.",
        ]
    )
    np.testing.assert_array_equal(fill_holes(ring), _mask(["#####.", "#####.", "#####.", "#####."]))
    # Background touching the border is not a hole.
    open_ring = _mask(["###", "#..", "###"])
    np.testing.assert_array_equal(fill_holes(open_ring), open_ring)


def test_clean_mask_thresholds_then_keeps_largest_then_fills() -> None:
    probability = np.array(
        [
            [0.9, 0.9, 0.9, 0.1, 0.1, 0.8],
            [0.9, 0.2, 0.9, 0.1, 0.1, 0.1],
            [0.9, 0.9, 0.9, 0.1, 0.6, 0.6],
            [0.1, 0.1, 0.1, 0.1, 0.6, 0.6],
        ],
        dtype=np.float32,
    )
    expected = _mask(["###...", "###...", "###...", "......"])
    np.testing.assert_array_equal(clean_mask(probability), expected)
    # The ring (8 pixels, 0.9) beats the 0.6 block (4) and the lone 0.8 pixel; its hole is filled.
    np.testing.assert_array_equal(clean_mask(probability, threshold=0.95), np.zeros((4, 6), bool))


def test_merge_sets_cup_outside_disc_to_background() -> None:
    disc = _mask([".###", ".###", "...."])
    cup = _mask(["##..", "##..", "...#"])
    merged = merge_disc_cup(disc, cup)
    assert merged.dtype == np.uint8
    assert merged.tolist() == [[255, 0, 128, 128], [255, 0, 128, 128], [255, 255, 255, 255]]
    np.testing.assert_array_equal(disc_of(merged), disc)
    np.testing.assert_array_equal(cup_of(merged), cup & disc)


def test_postprocess_disc_cup_uses_each_threshold() -> None:
    disc_probability = np.full((5, 5), 0.6, dtype=np.float32)
    cup_probability = np.zeros((5, 5), dtype=np.float32)
    cup_probability[1:4, 1:4] = 0.4
    default = postprocess_disc_cup(disc_probability, cup_probability)
    assert set(np.unique(default).tolist()) == {128}
    tuned = postprocess_disc_cup(disc_probability, cup_probability, cup_threshold=0.3)
    assert (tuned == 0).sum() == 9 and (tuned == 128).sum() == 16
    none = postprocess_disc_cup(disc_probability, cup_probability, disc_threshold=0.7, cup_threshold=0.3)
    assert set(np.unique(none).tolist()) == {255}


def test_measures_follow_the_official_column_count_definition() -> None:
    # The cup is a slanted shape whose bounding box is 4 rows tall but whose tallest column
    # holds 3 pixels: the official vertical diameter is 3, not 4.
    merged = np.full((8, 8), 255, dtype=np.uint8)
    merged[1:7, 1:6] = 128  # disc 6 tall x 5 wide
    merged[2:5, 2] = 0  # cup column of 3 (rows 2-4)
    merged[5, 3:5] = 0  # and a row of 2 diagonally below it
    measures = disc_cup_measures(merged)
    assert measures.vcdr == pytest.approx(3 / 6, abs=1e-6)
    assert measures.hcdr == pytest.approx(2 / 5, abs=1e-6)
    assert measures.disc_area == 30 and measures.cup_area == 5
    assert measures.disc_centre_x == pytest.approx(3.0) and measures.disc_centre_y == pytest.approx(3.5)


def test_measures_of_an_empty_mask() -> None:
    measures = disc_cup_measures(np.full((4, 4), 255, dtype=np.uint8))
    assert measures.vcdr == 0.0 and measures.hcdr == 0.0 and measures.disc_area == 0
    assert measures.disc_centre_x is None and measures.as_dict()["disc_centre_y"] is None


def test_mean_map_and_spread() -> None:
    maps = [np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 0.5)]
    mean = mean_map(maps)
    assert mean.shape == (2, 3) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, 0.5)
    assert mean_and_spread([0.2, 0.4]) == pytest.approx((0.3, 0.1))
    assert mean_and_spread([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        mean_map([])


def test_mean_point_returns_centre_and_rms_distance() -> None:
    centre, spread = mean_point([(0.0, 0.0), (6.0, 8.0)])
    assert centre == (3.0, 4.0)
    assert spread == pytest.approx(5.0)
    assert mean_point([(1.5, 2.5)]) == ((1.5, 2.5), 0.0)


@pytest.mark.parametrize(
    ("disc_x", "fovea_x", "eye"),
    [(1500.0, 900.0, "right"), (400.0, 1000.0, "left"), (700.0, 700.4, None), (None, 5.0, None), (5.0, None, None)],
)
def test_infer_eye_side_from_disc_position(disc_x: float | None, fovea_x: float | None, eye: str | None) -> None:
    assert infer_eye_side(disc_x, fovea_x) == eye


@pytest.mark.parametrize("seed", range(5))
def test_clean_mask_equals_whole_image_reference(seed: int) -> None:
    """The fast path (OpenCV labels, holes filled in the blob's box) matches the plain definition."""
    from scipy import ndimage
    from skimage import measure

    rng = np.random.default_rng(seed)
    probability = ndimage.gaussian_filter(rng.random((60, 80)), 2.0)
    probability = (probability - probability.min()) / np.ptp(probability)
    labels = measure.label(probability >= 0.5, connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    reference = ndimage.binary_fill_holes(labels == np.argmax(sizes))
    np.testing.assert_array_equal(clean_mask(probability), reference)
    # Rings: a blob whose hole touches nothing but the blob is filled; the box crop keeps that.
    ring = np.zeros((20, 20))
    ring[3:15, 5:17] = 1.0
    ring[6:12, 8:14] = 0.0
    assert clean_mask(ring).sum() == 12 * 12


@pytest.mark.parametrize("offset", [(0, 0), (37, 113), (140, 250)])
def test_clean_mask_of_a_small_blob_in_a_large_map_equals_the_reference(offset: tuple[int, int]) -> None:
    """Only the box around the mask's pixels is labelled: the answer is the whole map's, wherever
    the blobs lie (an edge included), and of two equal blobs the top-most still wins."""
    from scipy import ndimage
    from skimage import measure

    rng = np.random.default_rng(sum(offset))
    probability = np.zeros((200, 300), np.float32)
    patch = ndimage.gaussian_filter(rng.random((60, 50)), 1.5)
    y, x = offset
    probability[y:y + 60, x:x + 50] = (patch - patch.min()) / np.ptp(patch)
    labels = measure.label(probability >= 0.5, connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    reference = ndimage.binary_fill_holes(labels == np.argmax(sizes))
    np.testing.assert_array_equal(clean_mask(probability), reference)
    twins = np.zeros((200, 300), np.float32)
    twins[150:160, 20:30] = 1.0  # lower, further left
    twins[40:50, 200:210] = 1.0  # top-most: labelled first
    kept = clean_mask(twins)
    assert kept[40:50, 200:210].all() and not kept[150:160, 20:30].any()
