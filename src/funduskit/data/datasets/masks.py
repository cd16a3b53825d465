"""Disc/cup and vessel masks in funduskit's conventions, whatever each data set stores.

:func:`load_disc_cup_mask` returns REFUGE values: 0 = cup, 128 = disc rim, 255 = background
(disc = value < 255, cup = value == 0). How the stored file is converted is named by
``Sample.mask_format``:

=================== ==================================================================
``refuge``           0 / 128 / 255 as stored (REFUGE, REFUGE2, synthetic)
``drishti-softmap``  disc and cup soft maps of 4 experts; reference = at least 2 of 4
``disc-cup-binary``  separate binary disc and cup masks, white on black (RIM-ONE DL)
``riga-outlines``    six raters' outlines drawn on the photograph; majority of raters
``disc-only``        disc > 0 on 0 background, no cup (IDRiD; red channel of a colour mask)
``disc-only-black``  disc = 0 on 255 background, no cup (PALM, ADAM)
=================== ==================================================================

Disc-only formats give masks with 128 and 255 only; :func:`has_cup_annotation` tells them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.datasets.drishti import REFERENCE_LEVEL
from funduskit.data.datasets.riga import outlines_to_refuge
from funduskit.data.io import image_size, load_mask
from funduskit.data.sample import Sample

REFUGE_VALUES = frozenset({0, 128, 255})
DISC_ONLY_FORMATS = frozenset({"disc-only", "disc-only-black"})


def _values(mask: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(mask)]


def _unknown_values(path: Path, found: list[int], expected: str) -> DataError:
    shown = ", ".join(map(str, found[:12])) + (", ..." if len(found) > 12 else "")
    return DataError(path, f"holds values {{{shown}}}; {expected}",
                     fix="use the data set's original mask files (lossless, unscaled)")


def _refuge(sample: Sample) -> np.ndarray:
    path = Path(sample.disc_cup_mask_path)  # type: ignore[arg-type]
    mask = load_mask(path)
    found = _values(mask)
    if not set(found) <= REFUGE_VALUES:
        raise _unknown_values(path, found, "a REFUGE mask holds only 0 (cup), 128 (rim) and 255 (background)")
    return mask


def _disc_only(sample: Sample) -> np.ndarray:
    path = Path(sample.disc_cup_mask_path)  # type: ignore[arg-type]
    stored = load_mask(path, channel=0)
    found = _values(stored)
    if len(found) > 2 or (len(found) == 2 and found[0] != 0):
        raise _unknown_values(path, found, "a disc mask holds 0 (background) and one disc value")
    return np.where(stored > 0, 128, 255).astype(np.uint8)


def _disc_only_black(sample: Sample) -> np.ndarray:
    path = Path(sample.disc_cup_mask_path)  # type: ignore[arg-type]
    stored = load_mask(path)
    found = _values(stored)
    if not set(found) <= {0, 255}:
        raise _unknown_values(path, found, "a PALM/ADAM disc mask holds only 0 (disc) and 255 (background)")
    return np.where(stored == 0, 128, 255).astype(np.uint8)


def disc_and_cup_to_refuge(sample: Sample, cup_key: str, level: int) -> np.ndarray:
    """``(H, W)`` uint8 REFUGE mask from a disc map and a cup map, each stored in its own file
    (``disc_cup_mask_path`` and ``sample.extra[cup_key]``): disc where the disc map is >= ``level``,
    cup where both maps are."""
    disc_path = Path(sample.disc_cup_mask_path)  # type: ignore[arg-type]
    cup_path = sample.extra.get(cup_key)
    if not isinstance(cup_path, (str, Path)):
        raise DataError(disc_path, f"has no cup map recorded in the sample (extra[{cup_key!r}])")
    disc = load_mask(disc_path) >= level
    cup = load_mask(cup_path) >= level
    if cup.shape != disc.shape:
        raise DataError(cup_path, f"is {cup.shape[1]}x{cup.shape[0]} but the disc map is "
                        f"{disc.shape[1]}x{disc.shape[0]}")
    mask = np.full(disc.shape, 255, np.uint8)
    mask[disc] = 128
    mask[disc & cup] = 0
    return mask


def _drishti_softmaps(sample: Sample) -> np.ndarray:
    """At least two of the four experts (soft-map value >= 128)."""
    return disc_and_cup_to_refuge(sample, "cup_softmap_path", REFERENCE_LEVEL)


def _binary_pair(sample: Sample) -> np.ndarray:
    for key in (None, "cup_mask_path"):
        path = Path(sample.disc_cup_mask_path if key is None else sample.extra[key])  # type: ignore[arg-type]
        found = _values(load_mask(path))
        if len(found) > 2 or (len(found) == 2 and found[0] != 0):
            raise _unknown_values(path, found, "a binary disc or cup mask holds 0 (background) and one value")
    return disc_and_cup_to_refuge(sample, "cup_mask_path", 1)


MASK_CONVERTERS: dict[str, Callable[[Sample], np.ndarray]] = {
    "refuge": _refuge,
    "drishti-softmap": _drishti_softmaps,
    "disc-cup-binary": _binary_pair,
    "riga-outlines": outlines_to_refuge,
    "disc-only": _disc_only,
    "disc-only-black": _disc_only_black,
}
"""``mask_format`` -> function giving the ``(H, W)`` uint8 REFUGE mask of a sample."""


def has_cup_annotation(sample: Sample) -> bool:
    """True when the sample's disc/cup mask annotates the cup (not a disc-only format)."""
    return sample.disc_cup_mask_path is not None and sample.mask_format not in DISC_ONLY_FORMATS


def load_disc_cup_mask(sample: Sample) -> np.ndarray:
    """The sample's disc/cup annotation as a REFUGE mask.

    Returns:
        ``(H, W)`` uint8 at the photograph's size: 0 = cup, 128 = rim, 255 = background.
        Disc-only formats give 128 / 255 only (see :func:`has_cup_annotation`).

    Raises:
        DataError: the sample has no disc/cup annotation, the file holds values its format does
            not define (the values found are named), or its size differs from the photograph's.
        FunduskitError: ``sample.mask_format`` is unknown.
    """
    if sample.disc_cup_mask_path is None:
        raise DataError(sample.image_path, f"has no disc/cup annotation in {sample.source}",
                        fix="train disc and cup models on a set with masks")
    converter = MASK_CONVERTERS.get(sample.mask_format)
    if converter is None:
        raise FunduskitError(f"unknown mask_format {sample.mask_format!r} for {sample.image_path}; "
                             f"known: {', '.join(MASK_CONVERTERS)}")
    mask = converter(sample)
    _check_shape(sample, mask, Path(sample.disc_cup_mask_path))
    return mask


def load_vessel_mask(sample: Sample) -> np.ndarray:
    """The sample's vessel annotation.

    Returns:
        ``(H, W)`` bool, True on vessels, at the photograph's size.

    Raises:
        DataError: the sample has no vessel mask, the file holds more than two values (the
            values found are named), or its size differs from the photograph's.
    """
    if sample.vessel_mask_path is None:
        raise DataError(sample.image_path, f"has no vessel annotation in {sample.source}",
                        fix="train the vessel model on DRIVE, CHASE_DB1, HRF or synthetic data")
    path = Path(sample.vessel_mask_path)
    stored = load_mask(path)
    found = _values(stored)
    if len(found) > 2 or (len(found) == 2 and found[0] != 0):
        raise _unknown_values(path, found, "a vessel mask holds 0 (background) and one vessel value")
    vessels = stored > 0
    _check_shape(sample, vessels, path)
    return vessels


def _check_shape(sample: Sample, mask: np.ndarray, path: Path) -> None:
    width, height = image_size(sample.image_path)
    if mask.shape != (height, width):
        raise DataError(path, f"is {mask.shape[1]}x{mask.shape[0]} pixels but its image "
                        f"{Path(sample.image_path).name} is {width}x{height}")
