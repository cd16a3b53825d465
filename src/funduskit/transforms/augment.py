"""Augmentation pipelines (albumentations), joint on the photo, its masks and the fovea.

The report (section 1) uses one augmentation recipe for every task: rotation, flip, affine
transformation, colour, contrast, brightness, sharpness, RGB shift, gamma, blur, ISO noise,
Gaussian noise, JPEG compression, sun flare, resize, elastic transform and down-sampling.
:func:`build_augmentation` builds that recipe as an ``albumentations.Compose`` for one task and
network size; :func:`apply_augmentation` runs it on a photograph with whichever of the disc/cup
mask, vessel mask and fovea it has; :func:`save_augmentation` / :func:`load_augmentation` keep
the pipeline, seed included, in YAML beside a training run.

Every pipeline starts by letterboxing the photograph to ``size x size`` (black padding to a
centred square, one scale for both axes, as :class:`funduskit.transforms.preprocess.Geometry` does), so
each later operation runs at network resolution and keeps that size.

Masks inside the ``Compose`` are label images whose background is 0 (rotations and padding
fill masks with 0). :func:`apply_augmentation` converts REFUGE disc/cup masks (255 =
background) to labels and back; call the ``Compose`` directly only with 0-background masks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import yaml

from funduskit.core.errors import DataError
from funduskit.core.tasks import TASKS
from funduskit.transforms.preprocess import Geometry

"""Tasks with an augmentation preset."""

STRENGTHS = {"none": 0.0, "light": 0.5, "default": 1.0, "strong": 1.5}
"""Strength name -> factor on every magnitude and probability. ``"none"`` only letterboxes
(the evaluation transform)."""

VESSEL_MASK = "vessel_mask"
"""Name of the vessel-mask target in the ``Compose`` (the disc/cup mask is ``mask``)."""

_REFUGE_VALUES = np.array([255, 128, 0], dtype=np.uint8)  # label 0 background, 1 rim, 2 cup
_REFUGE_TO_LABEL = np.full(256, 255, dtype=np.uint8)
_REFUGE_TO_LABEL[_REFUGE_VALUES] = np.arange(3, dtype=np.uint8)
_KEYPOINT_PARAMS = {"format": "xy", "remove_invisible": False}
_FUNDUSKIT_KEY = "funduskit"  # extra YAML section: what albumentations does not serialise
# albumentations 2.0 flips, rotates and shears keypoints with pixel centres at integers (flip:
# x -> W - 1 - x), while funduskit's coordinates put them at +0.5 (Geometry, OpenCV's resize);
# apply_augmentation shifts the fovea by this much on the way in and back on the way out.
_PIXEL_CENTRE = 0.5


@dataclass(frozen=True)
class AugmentedSample:
    """One augmented training sample, all at ``size x size``.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB.
        disc_cup_mask: ``(S, S)`` uint8 in REFUGE values {0 cup, 128 rim, 255 background}, or None.
        vessel_mask: ``(S, S)`` vessel mask with the dtype and values given (bool, or uint8
            0 / 255), or None.
        fovea: ``(x, y)`` in network pixels, in the continuous convention of
            :class:`funduskit.transforms.preprocess.Geometry` (``points_to_original`` maps it back when no
            augmentation moved it); it may lie outside the image after a large shift. None when
            no fovea was given.
    """

    image: np.ndarray
    disc_cup_mask: np.ndarray | None = None
    vessel_mask: np.ndarray | None = None
    fovea: tuple[float, float] | None = None


def _letterbox(size: int) -> list[A.BasicTransform]:
    return [
        A.LongestMaxSize(
            max_size=size,
            interpolation=cv2.INTER_LINEAR,
            area_for_downscale="image",
            mask_interpolation=cv2.INTER_NEAREST,
        ),
        A.PadIfNeeded(
            min_height=size,
            min_width=size,
            position="center",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=0,
        ),
    ]


def _geometric(task: str, size: int, f: float) -> list[A.BasicTransform]:
    """Flip, rotation, affine (shift, zoom = the report's "resize", shear), elastic."""
    warp = {
        "interpolation": cv2.INTER_LINEAR,
        "mask_interpolation": cv2.INTER_NEAREST,
        "border_mode": cv2.BORDER_CONSTANT,
        "fill": 0,
        "fill_mask": 0,
    }
    # Vessels have no up or down; the other tasks see upright photographs at test time, so
    # they are only tilted (a camera's roll) and flipped left/right (a left eye <-> a right eye).
    max_angle = 180.0 if task == "vessel" else 15.0 * f
    transforms: list[A.BasicTransform] = [A.HorizontalFlip(p=0.5)]
    if task == "vessel":
        transforms.append(A.VerticalFlip(p=0.5))
    transforms += [
        A.Rotate(limit=(-max_angle, max_angle), p=min(1.0, 0.5 * f), **warp),
        A.Affine(
            scale=(1 - 0.1 * f, 1 + 0.1 * f),
            translate_percent=(-0.05 * f, 0.05 * f),
            shear=(-5 * f, 5 * f),
            p=min(1.0, 0.5 * f),
            **warp,
        ),
    ]
    # Elastic: sigma is the smoothness of the displacement field, alpha its amplitude; with
    # alpha = 0.001 * S^2 the median point moves 0.4 % of the side and the largest about 1.3 %
    # (measured at S = 512): local shape changes only. Off for the fovea: albumentations maps
    # keypoints through it on the integer grid, which would add up to a pixel of label noise.
    if task != "fovea":
        alpha, sigma = 0.001 * size * size * f, max(1.0, 0.02 * size)
        transforms.append(A.ElasticTransform(alpha=alpha, sigma=sigma, p=min(1.0, 0.2 * f), **warp))
    return transforms


def _photometric(size: int, f: float) -> list[A.BasicTransform]:
    """Colour, contrast, brightness, sharpness, RGB shift, gamma; then the noise family."""
    return [
        A.OneOf(
            [
                A.HueSaturationValue(hue_shift_limit=5 * f, sat_shift_limit=15 * f, val_shift_limit=10 * f),
                A.ColorJitter(brightness=0.0, contrast=0.0, saturation=0.15 * f, hue=0.02 * f),
            ],
            p=min(1.0, 0.4 * f),
        ),
        A.RandomBrightnessContrast(brightness_limit=0.2 * f, contrast_limit=0.2 * f, p=min(1.0, 0.5 * f)),
        A.Sharpen(alpha=(0.1, 0.3 * f), lightness=(0.8, 1.0), p=min(1.0, 0.2 * f)),
        A.RGBShift(r_shift_limit=10 * f, g_shift_limit=10 * f, b_shift_limit=10 * f, p=min(1.0, 0.3 * f)),
        A.RandomGamma(gamma_limit=(100 - 20 * f, 100 + 20 * f), p=min(1.0, 0.3 * f)),
        A.Blur(blur_limit=(3, 5), p=min(1.0, 0.15 * f)),
        A.ISONoise(color_shift=(0.01, 0.03 * f), intensity=(0.1, 0.3 * f), p=min(1.0, 0.15 * f)),
        A.GaussNoise(std_range=(0.01, 0.04 * f), p=min(1.0, 0.15 * f)),
        A.ImageCompression(quality_range=(max(10, round(100 - 40 * f)), 100), p=min(1.0, 0.3 * f)),
        A.RandomSunFlare(
            flare_roi=(0.0, 0.0, 1.0, 1.0),
            src_radius=max(8, round(0.15 * size)),
            num_flare_circles_range=(3, 6),
            p=min(1.0, 0.05 * f),
        ),
        A.Downscale(
            scale_range=(max(0.1, 1 - 0.5 * f), 0.9),
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
            p=min(1.0, 0.15 * f),
        ),
    ]


def build_augmentation(
    task: str, size: int, *, strength: str = "default", seed: int | None = None
) -> A.Compose:
    """The report's augmentation recipe for one task, ending at ``size x size``.

    Geometry per task: every task gets left/right flips, tilts of up to 15 degrees (times the
    strength) and an affine shift/zoom/shear, which the fovea keypoint follows exactly; every
    task but ``fovea`` gets a mild elastic deformation; ``vessel`` additionally gets vertical
    flips and rotations over the full circle.

    Args:
        task: one of :data:`TASKS`.
        size: network side ``S``; the output is ``(S, S, 3)``.
        strength: a key of :data:`STRENGTHS`; ``"none"`` gives the letterbox-only evaluation
            transform.
        seed: seeds the pipeline (:func:`seed_augmentation`) so its sequence of outputs repeats.

    Returns:
        ``A.Compose`` with targets ``image`` ``(H, W, 3)`` uint8, ``mask`` (disc/cup labels,
        background 0), ``vessel_mask`` (background 0) and ``keypoints`` (``xy``, never removed).
        Run it with :func:`apply_augmentation`; a direct call must pass 0-background masks and
        keypoints with pixel centres at integers (funduskit coordinates minus 0.5, plus 0.5 on
        the way out), the convention albumentations flips and rotates them in.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {', '.join(STRENGTHS)}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    factor = STRENGTHS[strength]
    transforms = _letterbox(size)
    if factor > 0:
        transforms += _geometric(task, size, factor) + _photometric(size, factor)
    pipeline = A.Compose(
        transforms,
        keypoint_params=A.KeypointParams(**_KEYPOINT_PARAMS),
        additional_targets={VESSEL_MASK: "mask"},
        mask_interpolation=cv2.INTER_NEAREST,
    )
    seed_augmentation(pipeline, seed)
    return pipeline


def seed_augmentation(pipeline: A.Compose, seed: int | None) -> None:
    """Seed ``pipeline`` so that its sequence of outputs repeats, in place.

    ``Compose(seed=s)`` gives every transform the same seed ``s``, so transforms with equal
    probabilities fire together (with seed 5 none of the p = 0.5 transforms fires in the first
    six calls); here each transform gets its own seed derived from ``(s, position)``. Call it
    again in each data-loader worker with a different seed (e.g. ``seed + worker_id``), or the
    workers produce identical augmentations. ``None`` seeds every transform from fresh entropy.
    """
    pipeline.set_random_seed(seed)
    if seed is None:
        return
    for position, transform in enumerate(_walk(pipeline)):
        state = np.random.SeedSequence([seed, position]).generate_state(1)[0]
        transform.set_random_seed(int(state))
    pipeline.seed = seed  # what save_augmentation records


def _walk(compose: A.BaseCompose) -> list[A.BasicTransform | A.BaseCompose]:
    """Every transform and nested composition of ``compose``, parents before children."""
    found: list[A.BasicTransform | A.BaseCompose] = []
    for child in compose.transforms:
        found.append(child)
        if isinstance(child, A.BaseCompose):
            found += _walk(child)
    return found


def save_augmentation(pipeline: A.Compose, path: str | Path) -> None:
    """Write ``pipeline`` as YAML: albumentations' own serialisation plus its seed and mask
    interpolation (which albumentations leaves out), so :func:`load_augmentation` gives a
    pipeline with identical outputs."""
    document: dict[str, Any] = A.to_dict(pipeline)
    document[_FUNDUSKIT_KEY] = {
        "seed": pipeline.seed,
        "mask_interpolation": getattr(pipeline, "mask_interpolation", None),
    }
    Path(path).write_text(yaml.safe_dump(_plain(document), sort_keys=False))


def load_augmentation(path: str | Path) -> A.Compose:
    """Read a pipeline written by :func:`save_augmentation` (or by ``A.save(..., "yaml")``)."""
    document = yaml.safe_load(Path(path).read_text())
    if not isinstance(document, dict) or "transform" not in document:
        raise DataError(
            path,
            "is not an augmentation pipeline (no 'transform' section)",
            fix="write it with funduskit.transforms.augment.save_augmentation",
        )
    extra = document.pop(_FUNDUSKIT_KEY, None) or {}
    with warnings.catch_warnings():
        # albumentations' own to_dict writes a few read-only attributes that its from_dict
        # then reports as "not valid" arguments; they are ignored either way.
        warnings.filterwarnings("ignore", message=r"Argument\(s\) .* are not valid", category=UserWarning)
        pipeline = A.from_dict(document)
    if extra.get("mask_interpolation") is not None:
        pipeline.set_mask_interpolation(extra["mask_interpolation"])
    seed_augmentation(pipeline, extra.get("seed"))
    return pipeline


def _plain(value: Any) -> Any:
    """Tuples -> lists and numpy scalars -> Python numbers, for ``yaml.safe_dump``."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def apply_augmentation(
    pipeline: A.Compose,
    image: np.ndarray,
    disc_cup_mask: np.ndarray | None = None,
    vessel_mask: np.ndarray | None = None,
    fovea: tuple[float, float] | None = None,
) -> AugmentedSample:
    """Run ``pipeline`` on a photograph and whichever annotations it has.

    The photograph (and its masks) are letterboxed first with :class:`Geometry` of the
    pipeline's size, so the augmented sample and inference share exactly one geometry; the
    fovea follows every transform to within a fraction of a pixel (tested).

    Args:
        pipeline: from :func:`build_augmentation` (or :func:`load_augmentation`).
        image: ``(H, W, 3)`` uint8 RGB at any size.
        disc_cup_mask: ``(H, W)`` uint8 in REFUGE values {0, 128, 255}.
        vessel_mask: ``(H, W)`` bool, or uint8 with background 0.
        fovea: ``(x, y)`` in original pixels.

    Returns:
        :class:`AugmentedSample` at the pipeline's ``S x S``.
    """
    size = _pipeline_size(pipeline)
    geometry = Geometry.for_image(image, size) if size is not None else None
    data: dict[str, Any] = {"image": geometry.to_network(image) if geometry else image}
    for name, mask in (("disc_cup_mask", disc_cup_mask), ("vessel_mask", vessel_mask)):
        if mask is not None and mask.shape[:2] != image.shape[:2]:
            raise ValueError(f"{name} is {mask.shape[:2]}, the image is {image.shape[:2]}")
    if disc_cup_mask is not None:
        labels = _REFUGE_TO_LABEL[disc_cup_mask]
        if (labels == 255).any():
            found = sorted(set(np.unique(disc_cup_mask).tolist()) - {0, 128, 255})
            raise ValueError(f"disc_cup_mask holds values {found[:5]}; REFUGE masks hold only 0, 128, 255")
        data["mask"] = geometry.to_network(labels, interpolation=cv2.INTER_NEAREST) if geometry else labels
    vessel_dtype = None
    if vessel_mask is not None:
        vessel_dtype = vessel_mask.dtype
        vessels = vessel_mask.astype(np.uint8) if vessel_mask.dtype == np.bool_ else vessel_mask
        data[VESSEL_MASK] = (
            geometry.to_network(vessels, interpolation=cv2.INTER_NEAREST) if geometry else vessels
        )
    points = np.zeros((0, 2))
    if fovea is not None:
        points = geometry.points_to_network(fovea) if geometry else np.asarray(fovea, dtype=np.float64)
        points = points.reshape(1, 2) - _PIXEL_CENTRE
    data["keypoints"] = points.astype(np.float32)
    result = pipeline(**data)
    keypoints = np.asarray(result["keypoints"], dtype=np.float64).reshape(-1, 2) + _PIXEL_CENTRE
    return AugmentedSample(
        image=result["image"],
        disc_cup_mask=_REFUGE_VALUES[result["mask"]] if disc_cup_mask is not None else None,
        vessel_mask=result[VESSEL_MASK].astype(vessel_dtype) if vessel_mask is not None else None,
        fovea=(float(keypoints[0, 0]), float(keypoints[0, 1])) if fovea is not None else None,
    )


def _pipeline_size(pipeline: A.Compose) -> int | None:
    """The letterbox size of a pipeline from :func:`build_augmentation` (None if it has none)."""
    for transform in pipeline.transforms:
        if isinstance(transform, A.LongestMaxSize) and isinstance(transform.max_size, int):
            return transform.max_size
    return None
