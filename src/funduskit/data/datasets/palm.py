"""PALM (iChallenge-PM 2019, pathologic myopia) and ADAM (iChallenge-AMD 2020).

Both come from the same organisers with the same conventions; files are found by name up to
five levels deep::

    PALM-Training400/PALM-Training400/{H,N,P}0001.jpg           H high myopia, N normal, P pathologic myopia
    PALM-Training400/PALM-Training400-Annotation-D&F/Disc_Masks/P0001.bmp
    PALM-Training400/Fovea_Location_train.xlsx                    imgName, Fovea_X, Fovea_Y
    PALM-Validation400/V0001.jpg
    PALM-Validation-GT/PM_Label_and_Fovea_Location.xlsx           ID, imgName, Label, Fovea_X, Fovea_Y
    PALM-Validation-GT/Disc_Masks/V0001.bmp

    Training400/{AMD,Non-AMD}/A0001.jpg, N0001.jpg
    Training400/Disc_Masks/A0001.bmp
    Training400/Fovea_location.xlsx                               ID, imgName, Fovea_X, Fovea_Y

Disc masks are 0 inside the disc and 255 outside, without a cup (``mask_format="disc-only-black"``);
a photograph whose disc is not visible may have no mask. A fovea written as (0, 0) is not visible
and reads as ``None``. The disease label (pathologic myopia, AMD) is not a glaucoma label: it goes
to ``extra["pm_label"]`` / ``extra["amd_label"]`` and ``label`` stays ``None``.
"""

from __future__ import annotations

from pathlib import Path

from funduskit.data.datasets._files import FileIndex, matching_file, name_key, split_from_path, walk
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets._tables import annotated_sample, read_annotations, scan_tree
from funduskit.data.sample import Sample

SEARCH_DEPTH = 5
MASK_FOLDERS = frozenset({"discmasks"})
SKIPPED_FOLDERS = frozenset({"lesionmasks"})
TABLE_WORDS = ("fovea", "label")
_PALM_NAMES = ("palmtraining", "palmvalidation", "palmtest", "pmlabelandfovealocation")
_PALM_PREFIX_LABELS = {"p": 1, "h": 0, "n": 0}
_ADAM_FOLDER_LABELS = {"amd": 1, "nonamd": 0}


def _is_adam(root: Path) -> bool:
    return any(p.is_dir() and name_key(p.name) in _ADAM_FOLDER_LABELS for p in walk(root, 3))


def detect(root: Path) -> bool:
    """PALM folder or spreadsheet names (``PALM-*``, ``PM_Label_and_Fovea_Location``), or ADAM's
    ``AMD`` and ``Non-AMD`` photograph folders."""
    for path in walk(root, 3):
        if name_key(path.name).startswith(_PALM_NAMES):
            return True
    folders = {name_key(p.name) for p in walk(root, 3) if p.is_dir()}
    return {"amd", "nonamd"} <= folders


def read(root: Path) -> list[Sample]:
    """Every PALM or ADAM photograph with its disc mask, fovea and disease label.

    Raises:
        DataError: a spreadsheet lacks its columns, names a photograph that is not there, or
            holds a label other than 0/1; a disc mask has the wrong size.
    """
    adam = _is_adam(root)
    photographs, mask_index, tables = scan_tree(root, depth=SEARCH_DEPTH, mask_folders=MASK_FOLDERS,
                                                skipped_folders=SKIPPED_FOLDERS, table_words=TABLE_WORDS)
    annotations = read_annotations(sorted(tables), FileIndex(photographs, root), label_columns=("Label",))
    source, label_key = ("adam", "amd_label") if adam else ("palm", "pm_label")
    samples = []
    for image in photographs:
        annotation = annotations.get(image)
        disease = annotation.label if annotation and annotation.label is not None else _name_label(image, adam)
        samples.append(annotated_sample(
            image, annotation,
            label=None,  # the spreadsheet's label is the disease of the challenge (extra), not glaucoma
            disc_cup_mask_path=matching_file(mask_index, image, "disc mask"),
            source=source,
            split=split_from_path(image.parent, root),
            mask_format="disc-only-black",
            extra={} if disease is None else {label_key: disease},
        ))
    return samples


def _name_label(image: Path, adam: bool) -> int | None:
    """The disease label a training photograph's folder (ADAM) or name prefix (PALM) gives."""
    if adam:
        return _ADAM_FOLDER_LABELS.get(name_key(image.parent.name))
    if image.stem[1:].isdigit():
        return _PALM_PREFIX_LABELS.get(image.name[:1].lower())
    return None


FORMAT = DatasetFormat(
    name="palm",
    looks_for="PALM-Training400 / PALM-Validation400 / PM_Label_and_Fovea_Location.xlsx (PALM), "
    "or AMD + Non-AMD photograph folders (ADAM)",
    detect=detect,
    read=read,
)
