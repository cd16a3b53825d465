"""Drishti-GS1: optic disc and cup soft maps from four experts.

Both the original download and the flattened copy in ``shared/data`` read the same way; files
are found by name up to five levels deep::

    Drishti-GS1_files/Training/Images/drishtiGS_002.png
    Drishti-GS1_files/Training/GT/drishtiGS_002/SoftMap/drishtiGS_002_ODsegSoftmap.png
                                                       drishtiGS_002_cupsegSoftmap.png
    Drishti-GS1_files/Training/GT/drishtiGS_002/drishtiGS_002_cdrValues.txt
  or
    images/drishtiGS_002.jpg   softmaps/drishtiGS_002_{OD,cup}segSoftmap.png   cdr/drishtiGS_002_cdrValues.txt

A soft map's value says how many of the four experts marked a pixel (0, 64, 128, 191, 255 for
0..4). The reference mask (``mask_format="drishti-softmap"``, :mod:`funduskit.data.datasets.masks`):
a pixel is disc (cup) when at least two of the four experts marked it (value >= 128).
"""

from __future__ import annotations

from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import (
    disc_and_cup_files,
    is_image_file,
    split_from_path,
    walk,
)
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.sample import Sample

SEARCH_DEPTH = 8  # Drishti-GS1_files/Training/GT/<id>/SoftMap/<file>, possibly unpacked twice
DISC_SUFFIX = "_ODsegSoftmap"
CUP_SUFFIX = "_cupsegSoftmap"
CDR_SUFFIX = "_cdrValues"
REFERENCE_LEVEL = 128
"""Soft-map value at and above which a pixel is in the reference: at least 2 of 4 experts."""


def detect(root: Path) -> bool:
    """A ``*_ODsegSoftmap.png`` file, or a photograph named ``drishtiGS_*``."""
    for path in walk(root, SEARCH_DEPTH):
        if path.stem.endswith(DISC_SUFFIX) or (path.name.lower().startswith("drishtigs_") and is_image_file(path)):
            return True
    return False


def _read_cdrs(path: Path) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in path.read_text().replace(",", " ").split())
    except ValueError as error:
        raise DataError(path, "holds something other than numbers; the experts' cup-to-disc "
                        "ratios are expected") from error


def read(root: Path) -> list[Sample]:
    """Every Drishti-GS1 photograph with its soft maps (when present) and the experts' CDRs.

    Raises:
        DataError: one of a photograph's two soft maps is missing, or a map's size differs.
    """
    photographs: list[Path] = []
    maps: dict[tuple[str, str], Path] = {}
    cdrs: dict[str, Path] = {}
    for path in walk(root, SEARCH_DEPTH):
        stem = path.stem
        if stem.endswith(DISC_SUFFIX) or stem.endswith(CUP_SUFFIX):
            kind = "disc" if stem.endswith(DISC_SUFFIX) else "cup"
            maps[(stem.rsplit("_", 1)[0].lower(), kind)] = path
        elif stem.endswith(CDR_SUFFIX) and path.suffix.lower() == ".txt":
            cdrs[stem[: -len(CDR_SUFFIX)].lower()] = path
        elif is_image_file(path) and path.name.lower().startswith("drishtigs_"):
            photographs.append(path)
    samples = []
    for image in sorted(photographs):
        key = image.stem.lower()
        disc, cup = maps.get((key, "disc")), maps.get((key, "cup"))
        extra: dict[str, object] = {}
        if disc_and_cup_files(image, disc, cup, "soft map",
                              lambda kind: f"{image.stem}{CUP_SUFFIX if kind == 'cup' else DISC_SUFFIX}.png"):
            extra["cup_softmap_path"] = cup
        if key in cdrs:
            extra["expert_cdrs"] = _read_cdrs(cdrs[key])
        samples.append(Sample(
            image_id=image.name,
            image_path=image,
            disc_cup_mask_path=disc,
            source="drishti-gs1",
            split=split_from_path(image.parent, root),
            mask_format="drishti-softmap",
            extra=extra,
        ))
    return samples


FORMAT = DatasetFormat(
    name="drishti-gs1",
    looks_for="*_ODsegSoftmap.png soft maps or drishtiGS_* photographs (Drishti-GS1)",
    detect=detect,
    read=read,
)
