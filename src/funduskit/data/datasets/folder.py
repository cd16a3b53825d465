"""A plain folder of photographs, with optional spreadsheets of labels and fovea positions.

::

    photos/a.jpg, b.png, ...             the photographs (directly in the folder)
    photos/labels.csv                    optional: an image-name column (FileName, ImgName, ImageName,
                                         Image, ...) and a 0/1 label column (Glaucoma Risk, Label, ...)
                                         and/or Fovea_X, Fovea_Y; .xlsx works too

Every .csv / .xlsx / .xls directly in the folder is read, and each must have an image-name column
and a label and/or fovea columns.
"""

from __future__ import annotations

from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import FileIndex, list_images
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets._tables import (
    annotated_sample,
    find_tables,
    read_annotations,
)
from funduskit.data.sample import Sample


def detect(folder: Path) -> bool:
    """Any photograph directly in the folder."""
    return bool(list_images(folder))


def read(folder: Path) -> list[Sample]:
    """Every photograph directly in ``folder``, with labels and foveae from its spreadsheets.

    Raises:
        DataError: no photographs; a spreadsheet lacks its columns, names a photograph that is
            not there, or holds a label other than 0/1.
    """
    images = list_images(folder)
    if not images:
        raise DataError(folder, "holds no photographs (.jpg, .png, .bmp, .tif) directly inside",
                        fix="point at the folder that holds the photographs")
    annotations = read_annotations(find_tables(folder), FileIndex(images, folder))
    samples = []
    for image in images:
        samples.append(annotated_sample(image, annotations.get(image), source="folder"))
    return samples


FORMAT = DatasetFormat(
    name="folder",
    looks_for="photographs directly in the folder (.jpg, .png, .bmp, .tif), optional .csv/.xlsx",
    detect=detect,
    read=read,
)
