"""Augmentation pipelines: joint geometry on photo, masks and fovea; seeds; YAML round trip."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest

from funduskit.core.errors import DataError
from funduskit.transforms.augment import (
    STRENGTHS,
    TASKS,
    AugmentedSample,
    apply_augmentation,
    build_augmentation,
    load_augmentation,
    save_augmentation,
)
from funduskit.transforms.preprocess import Geometry

HEIGHT, WIDTH, SIZE = 420, 470, 160
DISC_CENTRE, DISC_AXES, CUP_AXES = (140, 200), (38, 44), (16, 20)
FOVEA_PIXEL = (320, 230)
FOVEA = (FOVEA_PIXEL[0] + 0.5, FOVEA_PIXEL[1] + 0.5)  # continuous coordinates of that pixel's centre


def _synthetic_eye() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo with a bright disc and a white fovea dot, its REFUGE mask, and a vessel mask.

    Returns:
        image ``(H, W, 3)`` uint8, disc/cup mask ``(H, W)`` uint8 {0, 128, 255}, vessel mask
        ``(H, W)`` bool that equals the disc region (so both masks can be compared).
    """
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    cv2.circle(image, (WIDTH // 2, HEIGHT // 2), 205, (150, 70, 30), -1)
    cv2.ellipse(image, DISC_CENTRE, DISC_AXES, 0, 0, 360, (245, 225, 160), -1)
    cv2.circle(image, FOVEA_PIXEL, 9, (255, 255, 255), -1)
    mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
    cv2.ellipse(mask, DISC_CENTRE, DISC_AXES, 0, 0, 360, 128, -1)
    cv2.ellipse(mask, DISC_CENTRE, CUP_AXES, 0, 0, 360, 0, -1)
    return image, mask, mask < 255


def _dot_centre(image: np.ndarray, near: tuple[float, float], background: float) -> np.ndarray:
    """Continuous ``(x, y)`` centroid of the bright blob within 8 px of ``near``."""
    grey = image.astype(np.float64).mean(axis=2)
    x, y = near
    x0, x1 = int(max(0, x - 8)), int(min(grey.shape[1], x + 9))
    y0, y1 = int(max(0, y - 8)), int(min(grey.shape[0], y + 9))
    window = grey[y0:y1, x0:x1]
    bright = (window > (window.max() + background) / 2).astype(np.float64)
    rows, columns = np.mgrid[y0:y1, x0:x1]
    return np.array([((columns + 0.5) * bright).sum(), ((rows + 0.5) * bright).sum()]) / bright.sum()


@pytest.mark.parametrize("task", TASKS)
def test_masks_and_fovea_follow_the_photo(task: str) -> None:
    image, mask, vessels = _synthetic_eye()
    errors, overlaps = [], []
    for seed in range(12):
        sample = apply_augmentation(build_augmentation(task, SIZE, seed=seed), image, mask, vessels, FOVEA)
        assert isinstance(sample, AugmentedSample)
        assert sample.image.shape == (SIZE, SIZE, 3) and sample.image.dtype == np.uint8
        assert sample.disc_cup_mask.shape == (SIZE, SIZE) and sample.disc_cup_mask.dtype == np.uint8
        assert set(np.unique(sample.disc_cup_mask).tolist()) <= {0, 128, 255}  # nearest only
        assert sample.vessel_mask.dtype == np.bool_
        disc = sample.disc_cup_mask < 255
        # both masks went through the very same warp
        np.testing.assert_array_equal(sample.vessel_mask, disc)
        cup = sample.disc_cup_mask == 0
        assert cup.any() and not (cup & ~disc).any()

        grey = sample.image.astype(np.float64).mean(axis=2)
        retina = grey[(~disc) & (grey > 20)]
        found = _dot_centre(sample.image, sample.fovea, float(np.median(retina)))
        errors.append(np.linalg.norm(found - np.asarray(sample.fovea)))

        rows, columns = np.mgrid[:SIZE, :SIZE] + 0.5
        fovea_dot = np.hypot(columns - sample.fovea[0], rows - sample.fovea[1]) < 8
        bright = (grey > (np.median(grey[disc]) + np.median(retina)) / 2) & ~fovea_dot
        bright_disc = _blobs_mostly_inside(bright, disc)  # drops sun-flare circles elsewhere
        overlaps.append((bright_disc & disc).sum() / (bright_disc | disc).sum())
    # Network pixels (the dot is 6 px across). The fovea pipeline follows the point exactly;
    # the others' elastic transform moves keypoints on the integer grid (up to ~1 px more).
    max_error, mean_error = (1.5, 0.5) if task == "fovea" else (2.5, 1.0)
    assert np.max(errors) < max_error, errors
    assert np.mean(errors) < mean_error, errors
    assert np.min(overlaps) > 0.85, overlaps


def _blobs_mostly_inside(bright: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The connected components of ``bright`` that lie at least half inside ``region``."""
    count, labels = cv2.connectedComponents(bright.astype(np.uint8))
    keep = [index for index in range(1, count) if region[labels == index].mean() >= 0.5]
    return np.isin(labels, keep)


def test_evaluation_transform_is_the_letterbox_geometry() -> None:
    image, mask, vessels = _synthetic_eye()
    geometry = Geometry(HEIGHT, WIDTH, SIZE)
    evaluation = build_augmentation("disc", SIZE, strength="none")
    sample = apply_augmentation(evaluation, image, mask, vessels, FOVEA)
    np.testing.assert_array_equal(sample.image, geometry.to_network(image))
    letterboxed_mask = geometry.to_network(mask, interpolation=cv2.INTER_NEAREST, pad_value=255)
    np.testing.assert_array_equal(sample.disc_cup_mask, letterboxed_mask)
    np.testing.assert_allclose(sample.fovea, geometry.points_to_network(FOVEA), atol=1e-4)
    np.testing.assert_allclose(geometry.points_to_original(sample.fovea), FOVEA, atol=1e-3)


def test_direct_compose_call_letterboxes_any_size() -> None:
    pipeline = build_augmentation("glaucoma", 96, seed=0)
    result = pipeline(image=np.full((130, 70, 3), 100, np.uint8))
    assert result["image"].shape == (96, 96, 3)


def test_optional_targets_and_uint8_vessels() -> None:
    image, mask, vessels = _synthetic_eye()
    pipeline = build_augmentation("vessel", SIZE, seed=3)
    only_image = apply_augmentation(pipeline, image)
    assert only_image.disc_cup_mask is None and only_image.vessel_mask is None and only_image.fovea is None
    vessels_255 = vessels.astype(np.uint8) * 255
    sample = apply_augmentation(pipeline, image, vessel_mask=vessels_255)
    assert sample.vessel_mask.dtype == np.uint8 and set(np.unique(sample.vessel_mask).tolist()) <= {0, 255}
    fovea_only = apply_augmentation(build_augmentation("fovea", SIZE, seed=1), image, fovea=FOVEA)
    assert fovea_only.fovea is not None and fovea_only.disc_cup_mask is None


def test_bad_inputs_are_refused() -> None:
    image, mask, _ = _synthetic_eye()
    pipeline = build_augmentation("disc", SIZE, seed=0)
    with pytest.raises(ValueError, match="0, 128, 255"):
        apply_augmentation(pipeline, image, mask // 2 + 1)
    with pytest.raises(ValueError, match="disc_cup_mask is"):
        apply_augmentation(pipeline, image, mask[:100])
    with pytest.raises(ValueError, match="unknown task 'retina'"):
        build_augmentation("retina", SIZE)
    with pytest.raises(ValueError, match="unknown strength"):
        build_augmentation("disc", SIZE, strength="extreme")


def test_every_operation_of_the_report_is_in_the_pipeline() -> None:
    pipeline = build_augmentation("disc", 256)
    names = {type(transform).__name__ for transform in _flatten(pipeline)}
    report = {
        "Rotate", "HorizontalFlip", "Affine", "HueSaturationValue", "ColorJitter", "RandomBrightnessContrast",
        "Sharpen", "RGBShift", "RandomGamma", "Blur", "ISONoise", "GaussNoise", "ImageCompression",
        "RandomSunFlare", "LongestMaxSize", "ElasticTransform", "Downscale",
    }  # fmt: skip
    assert report <= names, report - names
    assert "VerticalFlip" in {type(t).__name__ for t in _flatten(build_augmentation("vessel", 256))}
    assert "ElasticTransform" not in {type(t).__name__ for t in _flatten(build_augmentation("fovea", 256))}
    assert {type(t).__name__ for t in _flatten(build_augmentation("disc", 256, strength="none"))} == {
        "LongestMaxSize",
        "PadIfNeeded",
    }


def _flatten(transform: A.BaseCompose) -> list[A.BasicTransform]:
    found = []
    for child in transform.transforms:
        found += _flatten(child) if isinstance(child, A.BaseCompose) else [child]
    return found


def test_seeded_pipelines_repeat_and_differ_between_seeds() -> None:
    image, mask, vessels = _synthetic_eye()
    first = [apply_augmentation(build_augmentation("cup", SIZE, seed=5), image, mask, vessels, FOVEA)]
    first.append(apply_augmentation(build_augmentation("cup", SIZE, seed=5), image, mask, vessels, FOVEA))
    np.testing.assert_array_equal(first[0].image, first[1].image)
    assert first[0].fovea == first[1].fovea
    pipeline = build_augmentation("cup", SIZE, seed=5)
    images = [apply_augmentation(pipeline, image).image for _ in range(4)]
    assert not all(np.array_equal(images[0], other) for other in images[1:])


@pytest.mark.parametrize("strength", sorted(STRENGTHS))
def test_yaml_round_trip_gives_identical_outputs(tmp_path: Path, strength: str) -> None:
    image, mask, vessels = _synthetic_eye()
    pipeline = build_augmentation("disc", SIZE, strength=strength, seed=11)
    path = tmp_path / "augmentation.yaml"
    save_augmentation(pipeline, path)
    assert "ElasticTransform" in path.read_text() or strength == "none"
    loaded = load_augmentation(path)
    assert loaded.seed == 11
    for _ in range(6):
        before = apply_augmentation(pipeline, image, mask, vessels, FOVEA)
        after = apply_augmentation(loaded, image, mask, vessels, FOVEA)
        np.testing.assert_array_equal(before.image, after.image)
        np.testing.assert_array_equal(before.disc_cup_mask, after.disc_cup_mask)
        assert before.fovea == after.fovea


def test_loading_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("epochs: 3\n")
    with pytest.raises(DataError, match="not an augmentation pipeline"):
        load_augmentation(path)


def test_transforms_of_a_seeded_pipeline_fire_independently() -> None:
    # Compose(seed=s) alone gives every transform the same random stream, so equal
    # probabilities fire together; each transform must draw on its own.
    pipeline = build_augmentation("disc", 32, seed=5)
    pipeline.save_applied_params = True
    image = np.full((32, 32, 3), 90, np.uint8)
    applied = [{name for name, _ in pipeline(image=image)["applied_transforms"]} for _ in range(80)]
    flips = np.array(["HorizontalFlip" in names for names in applied])
    rotations = np.array(["Rotate" in names for names in applied])
    assert 0.3 < flips.mean() < 0.7 and 0.3 < rotations.mean() < 0.7
    assert (flips != rotations).sum() > 20
