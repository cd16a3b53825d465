"""The REFUGE / REFUGE2 submission format: read, write and build from ground truth.

A submission directory holds any of three parts (one per task)::

    classification_results.csv      FileName,Glaucoma Risk          (probability in [0, 1])
    segmentation/NAME.png           (H, W) uint8, 0 = cup, 128 = rim, 255 = background,
                                    at the original image size; NAME = image stem
                                    (REFUGE 2018 used NAME.bmp; both are read)
    fovea_location_results.csv      ImageName,Fovea_X,Fovea_Y       (original-image pixels)

In memory a :class:`Submission` keys every part by the image *stem* (``"V0001"``), the name the
three parts share; the image file names written in the CSV files (``"V0001.jpg"``) are kept in
``Submission.file_names``.
"""

from __future__ import annotations

import csv
import io as _stdio
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.files import atomic_write_bytes
from funduskit.data.io import PHOTO_SUFFIXES
from funduskit.data.sample import Sample
from funduskit.scoring.metrics import REFUGE_MASK_VALUES

CLASSIFICATION_FILE = "classification_results.csv"
SEGMENTATION_DIR = "segmentation"
FOVEA_FILE = "fovea_location_results.csv"
CLASSIFICATION_HEADER = ("FileName", "Glaucoma Risk")
FOVEA_HEADER = ("ImageName", "Fovea_X", "Fovea_Y")
#: Mask file suffixes read from ``segmentation/`` (REFUGE2 .png, REFUGE 2018 .bmp).
MASK_SUFFIXES = (".png", ".bmp")
#: The image suffix written in the CSV files when a submission does not know the file name.
DEFAULT_IMAGE_SUFFIX = ".jpg"
#: Tasks, in the order they are reported.
TASKS = ("segmentation", "classification", "fovea")

MaskSource = np.ndarray | Path


def image_stem(image_id: str) -> str:
    """The stem an image is matched by: ``"V0001.jpg"`` -> ``"V0001"``; ``"V0001"`` unchanged.

    Only image suffixes (:data:`PHOTO_SUFFIXES`, any case) are stripped, so a stem with dots in
    it (``"case.12"``) survives; a leading folder (``"Images/V0001.jpg"``) is dropped.
    """
    name = Path(str(image_id).strip()).name
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in PHOTO_SUFFIXES else name


@dataclass
class Submission:
    """Predictions for some or all of the three REFUGE tasks, keyed by image stem.

    Keys given with an image suffix (``"V0001.jpg"``) are normalised to the stem on creation and
    the full name is remembered in ``file_names`` (written back in the CSV files).

    Attributes:
        glaucoma_risk: stem -> glaucoma probability in [0, 1].
        segmentation: stem -> ``(H, W)`` uint8 REFUGE mask, or the path of its file (a read
            submission keeps paths so a 400-image set is not held in memory; see
            :func:`load_submission_mask`).
        fovea: stem -> ``(x, y)`` in original-image pixels.
        file_names: stem -> image file name for the CSV files (default ``stem + ".jpg"``).
    """

    glaucoma_risk: dict[str, float] = field(default_factory=dict)
    segmentation: dict[str, MaskSource] = field(default_factory=dict)
    fovea: dict[str, tuple[float, float]] = field(default_factory=dict)
    file_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        file_names = {image_stem(key): str(name) for key, name in self.file_names.items()}
        self.glaucoma_risk = _by_stem(self.glaucoma_risk, file_names, "glaucoma_risk")
        self.segmentation = _by_stem(self.segmentation, file_names, "segmentation")
        self.fovea = _by_stem(self.fovea, file_names, "fovea")
        self.file_names = file_names

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this submission carries, in :data:`TASKS` order."""
        present = {"segmentation": self.segmentation, "classification": self.glaucoma_risk, "fovea": self.fovea}
        return tuple(task for task in TASKS if present[task])

    def stems(self, task: str) -> set[str]:
        """The image stems predicted for ``task`` (one of :data:`TASKS`)."""
        parts = {"segmentation": self.segmentation, "classification": self.glaucoma_risk, "fovea": self.fovea}
        return set(parts[task])

    def file_name(self, stem: str) -> str:
        """The image file name written for ``stem`` in the CSV files."""
        return self.file_names.get(stem, stem + DEFAULT_IMAGE_SUFFIX)


def _by_stem(entries: Mapping[str, object], file_names: dict[str, str], part: str) -> dict:
    keyed: dict[str, object] = {}
    for key, value in entries.items():
        stem = image_stem(key)
        if stem in keyed:
            raise FunduskitError(f"Submission.{part}: two entries for image {stem!r} (one is {key!r})")
        keyed[stem] = value
        if stem != str(key).strip():
            file_names.setdefault(stem, Path(str(key).strip()).name)
    return keyed


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def check_refuge_mask(mask: np.ndarray) -> str | None:
    """What is wrong with a ``(H, W)`` uint8 REFUGE mask, or ``None`` when it is valid."""
    if mask.ndim != 2:
        return f"has shape {mask.shape}, expected a single-channel (H, W) mask"
    if mask.dtype != np.uint8:
        return f"has dtype {mask.dtype}, expected uint8"
    values = np.unique(mask)
    bad = np.setdiff1d(values, REFUGE_MASK_VALUES)
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        return f"has values {shown}; only 0 (cup), 128 (rim) and 255 (background) are allowed"
    return None


def load_submission_mask(source: MaskSource) -> np.ndarray:
    """A submitted mask as ``(H, W)`` uint8: the array itself, or the file read as stored.

    Files go through :func:`funduskit.data.io.load_mask` (palette and grey RGB collapsed to one
    channel); values are not checked here, see :func:`check_refuge_mask`.
    """
    if isinstance(source, np.ndarray):
        return source
    from funduskit.data.io import load_mask

    return load_mask(source)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_submission(directory: str | Path) -> Submission:
    """Read a REFUGE / REFUGE2 submission directory.

    Any subset of the three parts may be present. Masks are not decoded here (``segmentation``
    maps each stem to its file); CSV rows are all parsed, and every row that cannot be read
    (wrong column count, a value that is not a finite number, a risk outside [0, 1], a
    duplicate image) is listed in one error.

    Args:
        directory: the submission directory.

    Returns:
        The :class:`Submission`.

    Raises:
        DataError: the directory is missing or holds none of the parts, a CSV header or rows are
            wrong, or two mask files share a stem (``NAME.png`` and ``NAME.bmp``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "submission directory not found")
    classification_path = directory / CLASSIFICATION_FILE
    fovea_path = directory / FOVEA_FILE
    segmentation_dir = directory / SEGMENTATION_DIR
    if not (classification_path.is_file() or fovea_path.is_file() or segmentation_dir.is_dir()):
        raise DataError(
            directory,
            "holds no submission files",
            fix=f"expected any of {CLASSIFICATION_FILE}, {SEGMENTATION_DIR}/NAME.png, {FOVEA_FILE}",
        )
    file_names: dict[str, str] = {}
    glaucoma_risk: dict[str, float] = {}
    fovea: dict[str, tuple[float, float]] = {}
    if classification_path.is_file():
        for name, (risk,) in _read_csv(classification_path, CLASSIFICATION_HEADER, _parse_risk).items():
            glaucoma_risk[image_stem(name)] = risk
            file_names[image_stem(name)] = name
    if fovea_path.is_file():
        for name, (x, y) in _read_csv(fovea_path, FOVEA_HEADER, _parse_coordinate).items():
            fovea[image_stem(name)] = (x, y)
            file_names.setdefault(image_stem(name), name)
    segmentation = _find_masks(segmentation_dir) if segmentation_dir.is_dir() else {}
    return Submission(glaucoma_risk=glaucoma_risk, segmentation=segmentation, fovea=fovea, file_names=file_names)


def _find_masks(segmentation_dir: Path) -> dict[str, MaskSource]:
    masks: dict[str, MaskSource] = {}
    duplicates: list[str] = []
    for path in sorted(segmentation_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in MASK_SUFFIXES:
            continue
        if path.stem in masks:
            duplicates.append(f"{masks[path.stem].name} and {path.name}")  # type: ignore[union-attr]
        masks[path.stem] = path
    if duplicates:
        raise DataError(segmentation_dir, "two masks for one image: " + "; ".join(duplicates), fix="keep one per image")
    return masks


def _parse_risk(values: list[str]) -> tuple[float]:
    risk = _finite(values[0], "Glaucoma Risk")
    if not 0.0 <= risk <= 1.0:
        raise ValueError(f"Glaucoma Risk {values[0]!r} is outside [0, 1] (a probability is expected)")
    return (risk,)


def _parse_coordinate(values: list[str]) -> tuple[float, float]:
    return _finite(values[0], "Fovea_X"), _finite(values[1], "Fovea_Y")


def _finite(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} {text!r} is not a finite number")
    return value


def _read_csv(path: Path, header: tuple[str, ...], parse: Callable[[list[str]], tuple]) -> dict[str, tuple]:
    """Rows of a submission CSV as ``{image name: parsed values}``; every bad row in one error."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    expected = ",".join(header)
    if not rows or [cell.strip().lower() for cell in rows[0]] != [name.lower() for name in header]:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(path, f"header is {found!r}, expected {expected!r}", row=1)
    parsed: dict[str, tuple] = {}
    problems: list[str] = []
    for number, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != len(header):
            problems.append(f"row {number}: {len(cells)} columns, expected {len(header)} ({expected})")
            continue
        name = cells[0]
        if not name:
            problems.append(f"row {number}: empty {header[0]}")
            continue
        try:
            values = parse(cells[1:])
        except ValueError as error:
            problems.append(f"row {number}: {error}")
            continue
        if name in parsed:
            problems.append(f"row {number}: {name} appears a second time")
            continue
        parsed[name] = values
    if problems:
        raise DataError(path, f"{len(problems)} rows cannot be read: " + "; ".join(summarise_list(problems)))
    return parsed


def summarise_list(items: list[str], limit: int = 20) -> list[str]:
    """The first ``limit`` items of a list of problems, then ``"... and N more"``."""
    return items[:limit] + ([f"... and {len(items) - limit} more"] if len(items) > limit else [])


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def atomic_write_csv(path: str | Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> None:
    """Write a CSV file (``\\n`` line ends) atomically."""
    buffer = _stdio.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_submission(submission: Submission, directory: str | Path, *, mask_suffix: str = ".png") -> Path:
    """Write the parts a submission carries in the REFUGE2 format; every file atomically.

    Args:
        submission: what to write; parts left empty are not written.
        directory: created when missing. Files of an earlier submission there are replaced
            when they have the same name and otherwise left alone.
        mask_suffix: ``".png"`` (REFUGE2) or ``".bmp"`` (REFUGE 2018).

    Returns:
        ``directory``.

    Raises:
        FunduskitError: a mask is not ``(H, W)`` uint8 with values 0 / 128 / 255.
    """
    if mask_suffix not in MASK_SUFFIXES:
        raise FunduskitError(f"mask_suffix must be one of {', '.join(MASK_SUFFIXES)}, got {mask_suffix!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if submission.segmentation:
        segmentation_dir = directory / SEGMENTATION_DIR
        segmentation_dir.mkdir(exist_ok=True)
        for stem, source in sorted(submission.segmentation.items()):
            mask = load_submission_mask(source)
            problem = check_refuge_mask(mask)
            if problem:
                raise FunduskitError(f"segmentation of {stem} {problem}")
            ok, encoded = cv2.imencode(mask_suffix, mask)
            if not ok:
                raise FunduskitError(f"OpenCV could not encode the mask of {stem} as {mask_suffix}")
            atomic_write_bytes(segmentation_dir / f"{stem}{mask_suffix}", encoded.tobytes())
    if submission.glaucoma_risk:
        rows = [
            (submission.file_name(stem), repr(float(risk))) for stem, risk in sorted(submission.glaucoma_risk.items())
        ]
        atomic_write_csv(directory / CLASSIFICATION_FILE, CLASSIFICATION_HEADER, rows)
    if submission.fovea:
        rows = [
            (submission.file_name(stem), repr(float(x)), repr(float(y)))
            for stem, (x, y) in sorted(submission.fovea.items())
        ]
        atomic_write_csv(directory / FOVEA_FILE, FOVEA_HEADER, rows)
    return directory


def submission_from_samples(samples: Iterable[Sample]) -> Submission:
    """The "perfect" submission that the ground truth of ``samples`` would score.

    Glaucoma risk = the label (0.0 / 1.0), segmentation = the reference mask in REFUGE values
    (``funduskit.data.datasets.load_disc_cup_mask``, loaded into memory), fovea = the reference
    position. Annotations a sample lacks are left out.
    """
    from funduskit.data.datasets import load_disc_cup_mask

    submission = Submission()
    for sample in samples:
        stem = image_stem(sample.image_id)
        submission.file_names[stem] = Path(sample.image_id).name
        if sample.label is not None:
            submission.glaucoma_risk[stem] = float(sample.label)
        if sample.disc_cup_mask_path is not None:
            submission.segmentation[stem] = load_disc_cup_mask(sample)
        if sample.fovea is not None:
            submission.fovea[stem] = (float(sample.fovea[0]), float(sample.fovea[1]))
    return submission
