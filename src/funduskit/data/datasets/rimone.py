"""RIM-ONE DL (Fumero et al. 2020): crops centred on the optic disc, with disc and cup masks and
glaucoma labels, in its own layout::

    RIM-ONE_DL_images/partitioned_randomly/training_set/glaucoma/r1_Im069.png
                                           test_set/normal/r2_Im004.png
                      partitioned_by_hospital/...
    RIM-ONE_DL_reference_segmentations/glaucoma/r1_Im069-1-Disc-T.png
                                                r1_Im069-1-Cup-T.png   (and .txt outlines)

The class folder (``glaucoma`` / ``normal``) is the label. The masks are binary, white on black,
at the crop's size (``mask_format="disc-cup-binary"``). Every sample's ``view`` is ``"disc"``:
these are not whole fundus photographs (no fovea, no field-of-view circle). A photograph found in
both partitions (randomly and by hospital) is read once, from the first in sorted order.
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

SEARCH_DEPTH = 6
LABELS = {"glaucoma": 1, "normal": 0}
DISC_SUFFIX = "-1-Disc-T"
CUP_SUFFIX = "-1-Cup-T"
SEGMENTATIONS = "segmentations"  # in the masks' folder name: RIM-ONE_DL_reference_segmentations


def _is_mask(path: Path) -> bool:
    return path.stem.endswith((DISC_SUFFIX, CUP_SUFFIX))


def detect(root: Path) -> bool:
    """A ``NAME-1-Disc-T.png`` mask, or a folder called ``RIM-ONE_DL_*``."""
    for path in walk(root, SEARCH_DEPTH):
        if path.stem.endswith(DISC_SUFFIX) or any(part.lower().startswith("rim-one_dl")
                                                   for part in path.relative_to(root).parts):
            return True
    return False


def _label(path: Path, root: Path) -> int | None:
    folders = [part.lower() for part in path.relative_to(root).parts[:-1]]
    labels = [LABELS[folder] for folder in folders if folder in LABELS]
    return labels[-1] if labels else None


def read(root: Path) -> list[Sample]:
    """Every RIM-ONE DL crop under ``root`` with its label and (when present) disc and cup masks.

    Raises:
        DataError: a crop is outside a ``glaucoma`` / ``normal`` folder, has only one of its two
            masks, or a mask's size differs from the crop's.
    """
    masks: dict[tuple[str, str], Path] = {}
    crops: dict[str, Path] = {}
    for path in sorted(walk(root, SEARCH_DEPTH)):
        if not is_image_file(path):
            continue
        if _is_mask(path):
            kind = "disc" if path.stem.endswith(DISC_SUFFIX) else "cup"
            masks[(path.stem[: -len(DISC_SUFFIX if kind == "disc" else CUP_SUFFIX)].lower(), kind)] = path
        elif not any(SEGMENTATIONS in part.lower() for part in path.relative_to(root).parts):
            crops.setdefault(path.name.lower(), path)
    samples = []
    for crop in sorted(crops.values()):
        label = _label(crop, root)
        if label is None:
            raise DataError(crop, "is not inside a 'glaucoma' or 'normal' folder, which gives RIM-ONE DL's label",
                            fix="keep the layout of the download (…/training_set/glaucoma/NAME.png)")
        disc, cup = masks.get((crop.stem.lower(), "disc")), masks.get((crop.stem.lower(), "cup"))
        extra: dict[str, object] = {}
        if disc_and_cup_files(crop, disc, cup, "mask",
                              lambda kind: f"{crop.stem}{CUP_SUFFIX if kind == 'cup' else DISC_SUFFIX}.png"):
            extra["cup_mask_path"] = cup
        samples.append(Sample(
            image_id=crop.name,
            image_path=crop,
            disc_cup_mask_path=disc,
            label=label,
            source="rim-one-dl",
            split=split_from_path(crop.parent, root),
            mask_format="disc-cup-binary",
            view="disc",
            extra=extra,
        ))
    return samples


FORMAT = DatasetFormat(
    name="rim-one-dl",
    looks_for="RIM-ONE_DL_images/…/{glaucoma,normal}/NAME.png and NAME-1-Disc-T.png / NAME-1-Cup-T.png masks",
    detect=detect,
    read=read,
)
