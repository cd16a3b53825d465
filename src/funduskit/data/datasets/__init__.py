"""Data set readers: every supported layout read into one list of :class:`~funduskit.data.sample.Sample`.

Example::

    from funduskit.data.datasets import read_dataset, load_disc_cup_mask
    samples = read_dataset("REFUGE2")                 # layout detected
    samples = read_dataset("photos", format="folder") # or named
    mask = load_disc_cup_mask(samples[0])             # (H, W) uint8, 0 cup / 128 rim / 255 background

Layouts (``FORMATS`` names, the CLI's ``--format`` choices): ``refuge``, ``refuge2``, ``idrid``,
``palm`` (PALM and ADAM), ``riga``, ``drishti-gs1``, ``rim-one-dl``, ``drive``, ``chase_db1``, ``hrf``, ``folder``.
``docs/datasets.md`` shows each layout as read and what it yields.
"""

from __future__ import annotations

from pathlib import Path

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.datasets import (
    drishti,
    folder,
    idrid,
    palm,
    refuge,
    refuge2,
    riga,
    rimone,
    vessels,
)
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets.masks import (
    DISC_ONLY_FORMATS,
    MASK_CONVERTERS,
    has_cup_annotation,
    load_disc_cup_mask,
    load_vessel_mask,
)
from funduskit.data.sample import Sample

__all__ = [
    "DISC_ONLY_FORMATS",
    "FORMATS",
    "MASK_CONVERTERS",
    "DatasetFormat",
    "detect_format",
    "has_cup_annotation",
    "load_disc_cup_mask",
    "load_vessel_mask",
    "read_dataset",
]

FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        refuge.FORMAT,
        refuge2.FORMAT,
        idrid.FORMAT,
        palm.FORMAT,
        riga.FORMAT,
        drishti.FORMAT,
        rimone.FORMAT,
        vessels.DRIVE,
        vessels.CHASE_DB1,
        vessels.HRF,
        folder.FORMAT,
    )
}
"""Every layout by its ``--format`` name."""

DETECTION_ORDER: tuple[str, ...] = (
    "refuge2",  # before refuge: a REFUGE2 root holds REFUGE 2018 in Train/
    "palm",  # before refuge: ADAM's spreadsheet is also called Fovea_location.xlsx
    "refuge",
    "idrid",
    "riga",
    "drishti-gs1",
    "rim-one-dl",  # before folder: its crops sit in class folders
    "drive",
    "chase_db1",
    "hrf",
    "folder",  # last: any folder with photographs in it
)
"""The order :func:`detect_format` tries layouts in; the first that matches wins."""


def _folder(path: str | Path) -> Path:
    path = Path(path).absolute()
    if not path.exists():
        raise DataError(path, "does not exist", fix="check the path")
    if not path.is_dir():
        raise DataError(path, "is a file, not a data set folder", fix="point at the data set's folder")
    return path


def detect_format(path: str | Path) -> str:
    """The name of the layout of the folder ``path`` (a :data:`FORMATS` key).

    Detection looks at file and folder names only (nothing is decoded).

    Raises:
        DataError: the path is not a folder, or no layout matches; the message lists every
            layout tried and what it looks for.
    """
    root = _folder(path)
    for name in DETECTION_ORDER:
        if FORMATS[name].detect(root):
            return name
    tried = "; ".join(f"{name}: {FORMATS[name].looks_for}" for name in DETECTION_ORDER)
    raise DataError(root, f"is not a data set layout funduskit knows. Tried {tried}",
                    fix="pass --format NAME if the layout is known but renamed, or use a folder of photographs")


def read_dataset(path: str | Path, format: str | None = None) -> list[Sample]:  # noqa: A002 - the CLI's name
    """Every sample of the data set at ``path``.

    Args:
        path: the data set's folder.
        format: a :data:`FORMATS` name; detected with :func:`detect_format` when ``None``.

    Returns:
        Samples in a stable order (by layout, split, file name). Paths are checked to exist and
        masks to have their photograph's size (from file headers; mask values are checked when
        a mask is loaded).

    Raises:
        FunduskitError: ``format`` is not a known layout name.
        DataError: the folder is not readable as that layout (the message names the file, the
            spreadsheet row and what was expected), holds no samples, or two samples of one
            split share an image id.
    """
    root = _folder(path)
    if format is not None and format not in FORMATS:
        raise FunduskitError(f"unknown data set format {format!r}; known formats: {', '.join(FORMATS)}")
    name = format or detect_format(root)
    samples = FORMATS[name].read(root)
    if not samples:
        raise DataError(root, f"holds no photographs of the {name} layout (looked for {FORMATS[name].looks_for})")
    _check_unique_ids(samples)
    return samples


def _check_unique_ids(samples: list[Sample]) -> None:
    seen: dict[tuple[str | None, str], Sample] = {}
    for sample in samples:
        key = (sample.split, sample.image_id)
        if key in seen:
            raise DataError(sample.image_path,
                            f"has the image id {sample.image_id!r} of {seen[key].image_path} in the same split",
                            fix="rename one of the two files")
        seen[key] = sample
