"""REFUGE (2018): Training400, Validation400 and Test400 as the challenge distributed them.

The three sets are found by name anywhere below the folder given (five levels deep), so the
original downloads, unpacked side by side, and REFUGE2's ``Train/REFUGE1-{train,val,test}``
folders read the same way::

    REFUGE-Training400/Training400/{Glaucoma,Non-Glaucoma}/g0001.jpg, n0001.jpg
    Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/g0001.bmp
    Annotation-Training400/Fovea_location.xlsx          ID, ImgName, Fovea_X, Fovea_Y
    REFUGE-Validation400/V0001.jpg
    REFUGE-Validation400-GT/Disc_Cup_Masks/V0001.bmp
    REFUGE-Validation400-GT/Fovea_locations.xlsx        ID, ImgName, Fovea_X, Fovea_Y, Glaucoma Label
    REFUGE-Test400/Test400/T0001.jpg
    REFUGE-Test-GT/Disc_Cup_Masks/T0001.bmp
    REFUGE-Test-GT/Glaucoma_label_and_Fovea_location.xlsx   ID, ImgName, Label(Glaucoma=1), Fovea_X, Fovea_Y
"""

from __future__ import annotations

from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import FileIndex, matching_file, name_key, split_from_path, walk
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets._tables import annotated_sample, read_annotations, scan_tree
from funduskit.data.sample import Sample

SEARCH_DEPTH = 6  # Annotation-Training400/Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp, one level spare
MASK_FOLDERS = frozenset({"disccupmasks", "discmasks", "discmask"})
"""Folder names (as :func:`name_key`) that hold masks, never photographs."""
SKIPPED_FOLDERS = frozenset({"lesionmasks"})
TABLE_WORDS = ("fovea", "label")
"""A spreadsheet is read when its file name contains one of these words."""
_FOLDER_LABELS = {"glaucoma": 1, "nonglaucoma": 0}
_PREFIX_SPLITS = {"g": "train", "n": "train", "v": "validation", "t": "test"}


def scan(root: Path) -> tuple[list[Path], FileIndex, list[Path]]:
    """``(photographs, masks found in mask folders, fovea/label spreadsheets)`` below ``root``."""
    return scan_tree(root, depth=SEARCH_DEPTH, mask_folders=MASK_FOLDERS, skipped_folders=SKIPPED_FOLDERS,
                     table_words=TABLE_WORDS)


def _split_of(image: Path, root: Path) -> str | None:
    return split_from_path(image.parent, root) or _PREFIX_SPLITS.get(image.name[:1].lower())


def detect(root: Path) -> bool:
    """A ``Disc_Cup_Masks`` folder, or a REFUGE fovea/label spreadsheet beside g/n/V/T photographs."""
    for path in walk(root, SEARCH_DEPTH):
        key = name_key(path.name)
        if path.is_dir() and key == "disccupmasks":
            return True
        if key in {"fovealocationxlsx", "fovealocationsxlsx", "glaucomalabelandfovealocationxlsx"}:
            return True
    return False


def read_samples(root: Path, *, source: str = "refuge") -> list[Sample]:
    """Every REFUGE photograph below ``root`` with its mask, label and fovea.

    Raises:
        DataError: a spreadsheet row names a missing photograph, a label is not 0/1, a mask has
            the wrong size, or a photograph lacks the mask its split's other photographs have.
    """
    photographs, masks, tables = scan(root)
    annotations = read_annotations(tables, FileIndex(photographs, root))
    samples = []
    for image in photographs:
        annotation = annotations.get(image)
        label = _FOLDER_LABELS.get(name_key(image.parent.name))
        if label is None and annotation is not None:
            label = annotation.label
        samples.append(annotated_sample(
            image, annotation,
            disc_cup_mask_path=matching_file(masks, image, "disc/cup mask"),
            label=label,
            source=source,
            split=_split_of(image, root),
            mask_format="refuge",
        ))
    _check_masks_complete(samples, root)
    return samples


def _check_masks_complete(samples: list[Sample], root: Path) -> None:
    """Within a split, either every photograph has a mask or none has."""
    splits = {s.split for s in samples if s.disc_cup_mask_path is not None}
    for sample in samples:
        if sample.split in splits and sample.disc_cup_mask_path is None:
            raise DataError(
                sample.image_path,
                f"has no disc/cup mask ({sample.image_path.stem}.bmp in a Disc_Cup_Masks folder "
                f"below {root}) while other {sample.split} images have one",
                fix="restore the missing mask",
            )


def read(root: Path) -> list[Sample]:
    return read_samples(root)


FORMAT = DatasetFormat(
    name="refuge",
    looks_for="a Disc_Cup_Masks folder or Fovea_location(s).xlsx / "
    "Glaucoma_label_and_Fovea_location.xlsx (REFUGE 2018 downloads)",
    detect=detect,
    read=read,
)
