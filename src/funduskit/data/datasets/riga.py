"""RIGA: six ophthalmologists' disc and cup outlines drawn on copies of each photograph.

RIGA (Almazroa et al. 2018) ships, per subset folder, the unmarked photograph ``imageNprime.EXT``
and one marked copy per rater ``imageN-1.EXT`` .. ``imageN-6.EXT`` (tif or jpg), each with the
rater's disc and cup outlines drawn over the photograph::

    RIGA/MESSIDOR/image1prime.tif, image1-1.tif .. image1-6.tif
    RIGA/BinRushed/BinRushed1-Corrected/image1prime.jpg, image1-1.jpg ..    (BinRushed2..4 likewise)
    RIGA/Magrabia/Magrabia/MagrabiaMale/image1prime.tif, image1-1.tif ..  (MagrabiFemale likewise)

Subsets are found by file name up to five levels deep. The uncorrected ``BinRushed1`` folder is
skipped when ``BinRushed1-Corrected`` is present beside it. Image ids are
``<subset folder>_<file name>`` because file names repeat across subsets.

:func:`outlines_to_refuge` recovers each rater's disc and cup from the pixels where the marked
copy differs from the photograph, and combines the raters by majority (a pixel is disc, or cup,
when at least half of the raters say so).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import check_same_size, is_image_file, walk
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.io import load_image
from funduskit.data.sample import Sample

SEARCH_DEPTH = 5
_PRIME = re.compile(r"^(?P<base>.+?)prime$", re.IGNORECASE)
_RATER = re.compile(r"^(?P<base>.+?)-(?P<rater>[1-9])$")

OUTLINE_DIFFERENCE = 40
"""Smallest per-channel difference (0-255) between marked copy and photograph that counts as ink."""
MIN_INK_PIXELS = 20
"""Connected ink specks smaller than this are compression noise, not outline."""
MIN_CUP_FRACTION = 0.02
"""Holes of the disc line smaller than this fraction of the disc are gaps between lines, not the cup."""


def detect(root: Path) -> bool:
    """A photograph named ``*prime.<ext>`` beside a marked copy ``*-1.<ext>``."""
    for path in walk(root, SEARCH_DEPTH):
        match = _PRIME.match(path.stem)
        if match and is_image_file(path):
            base = match.group("base")
            if any(p.stem == f"{base}-1" for p in path.parent.glob(f"{base}-1.*")):
                return True
    return False


def _skipped(folder: Path) -> bool:
    return folder.name.lower() == "binrushed1" and (folder.parent / "BinRushed1-Corrected").is_dir()


def read(root: Path) -> list[Sample]:
    """Every RIGA photograph with its raters' marked copies.

    Raises:
        DataError: a photograph has no marked copy, or a marked copy's size differs.
    """
    primes: list[tuple[Path, str]] = []
    raters: dict[tuple[Path, str], list[Path]] = {}
    for path in walk(root, SEARCH_DEPTH):
        if not is_image_file(path) or _skipped(path.parent):
            continue
        if match := _PRIME.match(path.stem):
            primes.append((path, match.group("base")))
        elif match := _RATER.match(path.stem):
            raters.setdefault((path.parent, match.group("base")), []).append(path)
    samples = []
    for image, base in sorted(primes):
        marked = sorted(raters.get((image.parent, base), []), key=lambda p: p.stem)
        if not marked:
            raise DataError(image, f"has no rater copies ({base}-1{image.suffix} .. {base}-6{image.suffix})",
                            fix="copy the raters' files beside it, or remove it")
        for copy in marked:
            check_same_size(image, copy, "marked copy")
        samples.append(Sample(
            image_id=f"{image.parent.name}_{image.name}",
            image_path=image,
            disc_cup_mask_path=marked[0],
            source="riga",
            mask_format="riga-outlines",
            extra={"rater_paths": tuple(marked), "subset": image.parent.name},
        ))
    return samples


# --------------------------------------------------------------------------------------------
# Outlines to masks
# --------------------------------------------------------------------------------------------


def ink_mask(photograph: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 0/255: where the marked copy differs from the photograph (the outlines).

    Args:
        photograph: ``(H, W, 3)`` uint8, the unmarked photograph.
        marked: ``(H, W, 3)`` uint8, the same photograph with outlines drawn on it.
    """
    difference = np.abs(marked.astype(np.int16) - photograph.astype(np.int16)).max(axis=2)
    ink = (difference >= OUTLINE_DIFFERENCE).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[1:] = (stats[1:, cv2.CC_STAT_AREA] >= MIN_INK_PIXELS).astype(np.uint8) * 255
    ink = keep[labels]
    side = max(3, round(min(ink.shape) / 300) | 1)  # closes small gaps in a drawn line
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.morphologyEx(ink, cv2.MORPH_CLOSE, kernel)


def _fill(shape: tuple[int, int], contour: np.ndarray) -> np.ndarray:
    region = np.zeros(shape, np.uint8)
    cv2.drawContours(region, [contour], -1, 1, thickness=cv2.FILLED)
    return region.astype(bool)


def _solidity(contour: np.ndarray) -> float:
    hull = cv2.contourArea(cv2.convexHull(contour))
    return cv2.contourArea(contour) / hull if hull > 0 else 0.0


def outlines_to_disc_cup(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(disc, cup)`` bool ``(H, W)`` regions enclosed by a rater's two outlines; None when no
    closed outline is found.

    The disc is the largest outer contour of the ink, filled. The cup is the outer edge of the
    inner line (a contour two levels inside the disc), filled; when the two lines touch and the
    inner line has no contour of its own, it is the most convex hole of the disc line.
    """
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    parents = hierarchy[0][:, 3]
    top = [i for i in range(len(contours)) if parents[i] < 0]
    disc_index = max(top, key=lambda i: cv2.contourArea(contours[i]))
    disc = _fill(ink.shape, contours[disc_index])
    holes = [i for i in range(len(contours)) if parents[i] == disc_index]
    if not holes:
        return None  # an open line: nothing enclosed
    inner = [i for i in range(len(contours)) if parents[i] in holes]
    if inner:
        cup_index = max(inner, key=lambda i: cv2.contourArea(contours[i]))
    elif len(holes) >= 2:  # slivers where the lines meet are not the cup
        disc_area = cv2.contourArea(contours[disc_index])
        large = [i for i in holes if cv2.contourArea(contours[i]) >= MIN_CUP_FRACTION * disc_area] or holes
        cup_index = max(large, key=lambda i: _solidity(contours[i]))
    else:
        return disc, np.zeros_like(disc)  # one outline only: a disc without a cup
    return disc, _fill(ink.shape, contours[cup_index]) & disc


def outlines_to_refuge(sample: Sample) -> np.ndarray:
    """``(H, W)`` uint8 REFUGE mask (0 cup, 128 rim, 255 background) by majority of the raters.

    Raises:
        DataError: a marked copy holds no closed outline.
    """
    photograph = load_image(sample.image_path)
    paths = sample.extra.get("rater_paths") or (sample.disc_cup_mask_path,)
    disc_votes = np.zeros(photograph.shape[:2], np.int16)
    cup_votes = np.zeros_like(disc_votes)
    for path in paths:  # type: ignore[union-attr]
        marked = load_image(path)
        if marked.shape != photograph.shape:
            raise DataError(path, f"is {marked.shape[1]}x{marked.shape[0]} but the photograph "
                            f"{Path(sample.image_path).name} is {photograph.shape[1]}x{photograph.shape[0]}")
        regions = outlines_to_disc_cup(ink_mask(photograph, marked))
        if regions is None:
            raise DataError(path, f"holds no closed outline where it differs from {Path(sample.image_path).name}",
                            fix="check that it is a marked copy of that photograph")
        disc_votes += regions[0]
        cup_votes += regions[1]
    quorum = (len(paths) + 1) // 2  # type: ignore[arg-type]
    disc = disc_votes >= quorum
    mask = np.full(disc.shape, 255, np.uint8)
    mask[disc] = 128
    mask[disc & (cup_votes >= quorum)] = 0
    return mask


FORMAT = DatasetFormat(
    name="riga",
    looks_for="imageNprime.tif/.jpg photographs beside rater copies imageN-1 .. imageN-6 (RIGA)",
    detect=detect,
    read=read,
)
