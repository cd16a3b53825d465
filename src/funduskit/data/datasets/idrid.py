"""IDRiD: optic disc masks (part A) and disc and fovea centres (part C).

The folder given may be the IDRiD root or one of its parts; parts are found by name::

    A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_01.jpg
    A. Segmentation/2. All Segmentation Groundtruths/{a. Training Set,b. Testing Set}/5. Optic Disc/IDRiD_01_OD.tif
    C. Localization/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_001.jpg
    C. Localization/2. Groundtruths/1. Optic Disc Center Location/a. IDRiD_OD_Center_Training Set_Markups.csv
    C. Localization/2. Groundtruths/2. Fovea Center Location/IDRiD_Fovea_Center_Training Set_Markups.csv
        columns: Image No, X- Coordinate, Y - Coordinate  (image names without suffix)

Part A masks outline the disc only (no cup): ``mask_format="disc-only"``, the disc in the red
channel. Part C images get ``fovea`` and ``extra["disc_centre"]``. Part B (disease grading) holds
no disc, cup, fovea or glaucoma data and is not read.
"""

from __future__ import annotations

from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import (
    FileIndex,
    check_same_size,
    list_images,
    name_key,
    split_from_path,
    walk,
)
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets._tables import find_tables, read_annotations
from funduskit.data.sample import Sample

SEARCH_DEPTH = 3


def _parts(root: Path) -> tuple[list[Path], list[Path]]:
    """``(segmentation parts, localisation parts)``: folders holding "1. Original Images" and a
    ground-truth folder, the folder given included."""
    segmentation, localisation = [], []
    for folder in [root, *(p for p in walk(root, SEARCH_DEPTH - 1) if p.is_dir())]:
        children = {name_key(p.name): p for p in folder.iterdir() if p.is_dir()}
        if "1originalimages" not in children:
            continue
        if "2allsegmentationgroundtruths" in children:
            segmentation.append(folder)
        elif "2groundtruths" in children:
            localisation.append(folder)
    return segmentation, localisation


def detect(root: Path) -> bool:
    """"1. Original Images" beside "2. All Segmentation Groundtruths" or "2. Groundtruths"."""
    segmentation, localisation = _parts(root)
    return bool(segmentation or localisation)


def _image_folders(part: Path) -> dict[str | None, Path]:
    originals = next(p for p in part.iterdir() if name_key(p.name) == "1originalimages")
    folders = {split_from_path(Path(p.name)): p for p in sorted(originals.iterdir()) if p.is_dir()}
    if not folders and list_images(originals):
        folders = {None: originals}
    return folders


def _read_segmentation(part: Path) -> list[Sample]:
    truths = next(p for p in part.iterdir() if name_key(p.name) == "2allsegmentationgroundtruths")
    truth_sets = {split_from_path(Path(p.name)): p for p in truths.iterdir() if p.is_dir()}
    samples = []
    for split, folder in _image_folders(part).items():
        disc_folder = next((p for p in (truth_sets.get(split) or truths).iterdir()
                            if p.is_dir() and "opticdisc" in name_key(p.name)), None)
        discs = FileIndex(list_images(disc_folder), disc_folder) if disc_folder else None
        for image in list_images(folder):
            mask = discs.find(f"{image.stem}_OD") if discs else None
            if discs is not None and mask is None:
                raise DataError(disc_folder / f"{image.stem}_OD.tif",  # type: ignore[operator]
                                f"the optic disc mask for {image.name} is missing",
                                fix="restore it, or remove the image")
            if mask is not None:
                check_same_size(image, mask, "optic disc mask")
            samples.append(Sample(
                image_id=image.name, image_path=image, disc_cup_mask_path=mask, source="idrid",
                split=split, mask_format="disc-only", extra={"part": "segmentation"},
            ))
    return samples


def _read_localisation(part: Path) -> list[Sample]:
    truths = next(p for p in part.iterdir() if name_key(p.name) == "2groundtruths")
    tables = find_tables(truths, recursive_paths=walk(truths, 2))
    samples = []
    for split, folder in _image_folders(part).items():
        images = list_images(folder)
        index = FileIndex(images, folder)
        mine = [t for t in tables if split is None or split_from_path(Path(t.name)) == split]
        fovea_tables = [t for t in mine if "fovea" in t.name.lower()]
        disc_tables = [t for t in mine if "fovea" not in t.name.lower()]
        foveae = read_annotations(fovea_tables, index)
        discs = read_annotations(disc_tables, index)
        for image in images:
            extra: dict[str, object] = {"part": "localisation"}
            if image in discs and discs[image].fovea is not None:
                extra["disc_centre"] = discs[image].fovea
            samples.append(Sample(
                image_id=image.name, image_path=image,
                fovea=foveae[image].fovea if image in foveae else None,
                source="idrid", split=split, extra=extra,
            ))
    return samples


def read(root: Path) -> list[Sample]:
    """IDRiD's disc masks (part A) and disc and fovea centres (part C).

    Raises:
        DataError: a disc mask is missing or of the wrong size; a markup table lacks its
            columns or names an image that is not there.
    """
    segmentation, localisation = _parts(root)
    samples: list[Sample] = []
    for part in segmentation:
        samples += _read_segmentation(part)
    for part in localisation:
        samples += _read_localisation(part)
    return samples


FORMAT = DatasetFormat(
    name="idrid",
    looks_for="'1. Original Images' beside '2. All Segmentation Groundtruths' or '2. Groundtruths' (IDRiD)",
    detect=detect,
    read=read,
)
