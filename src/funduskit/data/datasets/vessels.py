"""Vessel data sets: DRIVE, CHASE_DB1 and HRF.

DRIVE (Utrecht); the folder given is the DRIVE root or one of its splits::

    {training,test}/images/21_training.tif      (01_test.tif)
    {training,test}/1st_manual/21_manual1.gif   vessel mask, 0 / 255
    {training,test}/2nd_manual/01_manual2.gif   second observer (test only)
    {training,test}/mask/21_training_mask.gif   field-of-view mask

CHASE_DB1 (Kingston), one folder (sub-folders up to two levels are searched)::

    Image_01L.jpg, Image_01L_1stHO.png, Image_01L_2ndHO.png      L / R = left / right eye

HRF (Erlangen); the folder given holds the three folders, or parts that each do::

    images/01_h.jpg, 01_g.jpg, 01_dr.JPG      h healthy, g glaucoma, dr diabetic retinopathy
    manual1/01_h.tif                          vessel mask
    mask/01_h_mask.tif                        field-of-view mask

Every sample has ``vessel_mask_path`` (the first observer); the field-of-view mask and a second
observer's mask go to ``extra["fov_mask_path"]`` and ``extra["second_vessel_mask_path"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import (
    FileIndex,
    check_same_size,
    child_dir,
    is_image_file,
    list_images,
    split_from_path,
    walk,
)
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.sample import Sample

_CHASE_IMAGE = re.compile(r"^Image_(\d+)([LR])$", re.IGNORECASE)
_HRF_IMAGE = re.compile(r"^(\d+)_(h|g|dr)$", re.IGNORECASE)
_HRF_DIAGNOSES = {"h": ("healthy", 0), "g": ("glaucoma", 1), "dr": ("diabetic retinopathy", 0)}


def _parts(root: Path, manual_folder: str) -> list[Path]:
    """Folders (``root`` or up to two levels below) holding ``images`` and ``manual_folder``."""
    candidates = [root, *(p for p in walk(root, 2) if p.is_dir())]
    return [f for f in candidates if child_dir(f, "images") and child_dir(f, manual_folder)]


def _index(folder: Path | None) -> FileIndex | None:
    return FileIndex(list_images(folder), folder) if folder is not None else None


def _partner(index: FileIndex | None, stem: str, image: Path, what: str, *, required: bool) -> Path | None:
    """The file called ``stem`` in ``index``, size-checked against ``image``."""
    if index is None:
        return None
    path = index.find(stem)
    if path is None:
        if required:
            raise DataError(index.where / stem, f"the {what} for {image.name} is missing (a file "
                            f"named {stem} with an image suffix is expected)", fix=f"restore the {what}")
        return None
    check_same_size(image, path, what)
    return path




# --------------------------------------------------------------------------------------------
# DRIVE
# --------------------------------------------------------------------------------------------


def detect_drive(root: Path) -> bool:
    """An ``images`` folder beside a ``1st_manual`` folder."""
    return bool(_parts(root, "1st_manual"))


def read_drive(root: Path) -> list[Sample]:
    """Every DRIVE photograph with its vessel and field-of-view masks.

    Splits without manual masks (the unlabelled test set) are read when they sit beside a
    labelled one, with ``vessel_mask_path=None``.
    """
    parts = _parts(root, "1st_manual")
    if parts and parts[0] != root:  # the DRIVE root: also read splits without 1st_manual
        parts = sorted({*parts, *(p for p in root.iterdir() if p.is_dir() and child_dir(p, "images"))})
    samples = []
    for part in parts:
        manuals = _index(child_dir(part, "1st_manual"))
        seconds = _index(child_dir(part, "2nd_manual"))
        fovs = _index(child_dir(part, "mask"))
        for image in list_images(child_dir(part, "images")):  # type: ignore[arg-type]
            number = image.stem.split("_")[0]
            extra: dict[str, object] = {}
            if fov := _partner(fovs, f"{image.stem}_mask", image, "field-of-view mask", required=False):
                extra["fov_mask_path"] = fov
            if second := _partner(seconds, f"{number}_manual2", image, "second vessel mask", required=False):
                extra["second_vessel_mask_path"] = second
            samples.append(Sample(
                image_id=image.name,
                image_path=image,
                vessel_mask_path=_partner(manuals, f"{number}_manual1", image, "vessel mask", required=True),
                source="drive",
                split=split_from_path(part, root),
                extra=extra,
            ))
    return samples


# --------------------------------------------------------------------------------------------
# CHASE_DB1
# --------------------------------------------------------------------------------------------


def _chase_files(root: Path) -> tuple[list[Path], FileIndex]:
    files = [p for p in walk(root, 3) if is_image_file(p)]
    images = [p for p in files if _CHASE_IMAGE.match(p.stem)]
    manuals = FileIndex((p for p in files if p.stem.lower().endswith(("_1stho", "_2ndho"))), root)
    return sorted(images), manuals


def detect_chase(root: Path) -> bool:
    """Photographs ``Image_NN{L,R}`` with ``Image_NN{L,R}_1stHO`` vessel masks."""
    images, manuals = _chase_files(root)
    return any(manuals.find(f"{p.stem}_1stHO") for p in images)


def read_chase(root: Path) -> list[Sample]:
    """Every CHASE_DB1 photograph with both observers' vessel masks; eye side from the name."""
    images, manuals = _chase_files(root)
    samples = []
    for image in images:
        eye = "left" if _CHASE_IMAGE.match(image.stem).group(2).upper() == "L" else "right"  # type: ignore[union-attr]
        first = manuals.find(f"{image.stem}_1stHO")
        if first is None:
            raise DataError(image.with_name(f"{image.stem}_1stHO.png"),
                            f"the vessel mask for {image.name} is missing", fix="restore it")
        check_same_size(image, first, "vessel mask")
        second = manuals.find(f"{image.stem}_2ndHO")
        if second is not None:
            check_same_size(image, second, "second vessel mask")
        samples.append(Sample(
            image_id=image.name,
            image_path=image,
            vessel_mask_path=first,
            eye=eye,  # type: ignore[arg-type]
            source="chase_db1",
            extra={"second_vessel_mask_path": second} if second else {},
        ))
    return samples


# --------------------------------------------------------------------------------------------
# HRF
# --------------------------------------------------------------------------------------------


def detect_hrf(root: Path) -> bool:
    """An ``images`` folder beside a ``manual1`` folder."""
    return bool(_parts(root, "manual1"))


def read_hrf(root: Path) -> list[Sample]:
    """Every HRF photograph with its vessel and field-of-view masks.

    ``label`` is 1 for the glaucoma group and 0 for the healthy and diabetic-retinopathy groups
    (diagnosed, not glaucomatous); ``extra["diagnosis"]`` names the group.
    """
    samples = []
    for part in _parts(root, "manual1"):
        manuals = _index(child_dir(part, "manual1"))
        fovs = _index(child_dir(part, "mask"))
        for image in list_images(child_dir(part, "images")):  # type: ignore[arg-type]
            match = _HRF_IMAGE.match(image.stem)
            diagnosis, label = _HRF_DIAGNOSES[match.group(2).lower()] if match else (None, None)
            extra: dict[str, object] = {"diagnosis": diagnosis} if diagnosis else {}
            if fov := _partner(fovs, f"{image.stem}_mask", image, "field-of-view mask", required=False):
                extra["fov_mask_path"] = fov
            samples.append(Sample(
                image_id=image.name,
                image_path=image,
                vessel_mask_path=_partner(manuals, image.stem, image, "vessel mask", required=True),
                label=label,
                source="hrf",
                split=split_from_path(part, root),
                extra=extra,
            ))
    return samples


DRIVE = DatasetFormat(
    name="drive",
    looks_for="images/ beside 1st_manual/ (DRIVE, or its training/ and test/ folders)",
    detect=detect_drive,
    read=read_drive,
)
CHASE_DB1 = DatasetFormat(
    name="chase_db1",
    looks_for="Image_NNL.jpg photographs with Image_NNL_1stHO.png vessel masks (CHASE_DB1)",
    detect=detect_chase,
    read=read_chase,
)
HRF = DatasetFormat(
    name="hrf",
    looks_for="images/ beside manual1/ (HRF)",
    detect=detect_hrf,
    read=read_hrf,
)
