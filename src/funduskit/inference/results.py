"""Per-image prediction records and the files built from them.

Each photograph's outcome is one :class:`ImageResult`, saved as ``results/<image_id>.json`` the
moment the photograph is done (atomically: a temporary file moved into place). Those files are
the record of what is done, so an interrupted ``funduskit predict`` resumes where it stopped; the
tables (``results.csv``, ``results.json``) and the REFUGE2 CSVs are rebuilt from them at the end.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from funduskit.core.files import atomic_write_text

Status = Literal["ok", "error"]

#: The files of a ``funduskit predict`` output folder (besides the REFUGE submission files).
RESULTS_DIR = "results"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
OVERLAYS_DIR = "overlays"
VESSELS_DIR = "vessels"
PROBABILITIES_DIR = "probabilities"
RUN_RECORD = "predict.json"


@dataclass
class ImageResult:
    """Everything ``funduskit predict`` says about one photograph.

    Coordinates and areas are in original-image pixels. Fields other than the identity and the
    status are ``None`` when the photograph could not be read (``status == "error"``).

    Attributes:
        image_id: file name used in the submission (``V0001.jpg``).
        image_path: the photograph as given.
        status: ``"ok"`` or ``"error"``; ``error`` says why.
        width, height: image size.
        glaucoma_probability: ensemble mean of the classifiers' probabilities, or, when the models
            folder holds a glaucoma combiner (``funduskit tune``), its combination with the vCDR.
        glaucoma_spread: standard deviation of the members' (and flips') probabilities.
        classifier_probability: the classifiers' mean, when a combiner gave ``glaucoma_probability``.
        vcdr, hcdr: vertical (official definition) and horizontal cup-to-disc ratios.
        disc_area, cup_area: pixels.
        disc_x, disc_y: disc centroid.
        fovea_x, fovea_y: ensemble mean fovea position; fovea_spread: RMS distance of the members'
            positions to it.
        fovea_disc_diameters: the fovea networks' answer's distance from the disc centre, in disc
            diameters; outside 1.8-3.4 the answer is withheld (fovea_x / fovea_y None:
            :mod:`funduskit.inference.fovea_check`).
        eye: ``"left"`` / ``"right"`` inferred from the disc's side of the fovea, ``None`` if unknown.
        mask_file, overlay_file, vessel_file: paths relative to the output folder (the vessel map:
            8-bit probability, 255 = 1, at the photograph's size; None without vessel networks).
        view: ``"whole"`` (a whole fundus photograph) or ``"disc"`` (a crop centred on the disc),
            as given with ``--view`` or detected; a disc crop has no fovea.
        crop: ``[x0, y0, side]`` of the disc crop the crop networks saw (original pixels), or None.
        quality: the quality gate's grade, ``"good"``, ``"usable"`` or ``"reject"``
            (:mod:`funduskit.inference.quality`); a rejected photograph has no glaucoma
            probability, cup-to-disc ratios, fovea or submission mask (unless ``--quality off``).
        quality_reasons: why it is not good (``"; "``-separated), "" when good.
        quality_measures: the measures behind the grade.
        source_size, source_mtime_ns: the input file's size and mtime, to notice a changed input.
        settings_key: fingerprint of the models and options that produced this record.
    """

    image_id: str
    image_path: str
    status: Status = "ok"
    error: str | None = None
    width: int | None = None
    height: int | None = None
    glaucoma_probability: float | None = None
    glaucoma_spread: float | None = None
    classifier_probability: float | None = None
    vcdr: float | None = None
    hcdr: float | None = None
    disc_area: int | None = None
    cup_area: int | None = None
    disc_x: float | None = None
    disc_y: float | None = None
    fovea_x: float | None = None
    fovea_y: float | None = None
    fovea_spread: float | None = None
    fovea_disc_diameters: float | None = None
    eye: str | None = None
    mask_file: str | None = None
    overlay_file: str | None = None
    vessel_file: str | None = None
    view: str | None = None
    crop: list[int] | None = None
    quality: str | None = None
    quality_reasons: str | None = None
    quality_measures: dict[str, float | None] | None = None
    source_size: int | None = None
    source_mtime_ns: int | None = None
    settings_key: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageResult:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


#: Columns of ``results.csv`` (the record minus bookkeeping fields).
TABLE_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(ImageResult)
    if f.name not in {"source_size", "source_mtime_ns", "settings_key", "quality_measures"}
)


def probability_path(out_dir: str | Path, stem: str, part: str) -> Path:
    """Where ``predict --save-probabilities`` puts a photograph's ``part`` (disc or cup) map:
    ``OUT/probabilities/<stem>_<part>.npy``."""
    return Path(out_dir) / PROBABILITIES_DIR / f"{stem}_{part}.npy"


def result_path(out_dir: str | Path, image_id: str) -> Path:
    """Where the record of ``image_id`` lives: ``OUT/results/<image_id>.json``."""
    return Path(out_dir) / RESULTS_DIR / f"{image_id}.json"


def save_result(out_dir: str | Path, result: ImageResult) -> Path:
    """Write one record atomically; its existence marks the photograph as done."""
    text = json.dumps(result.as_dict(), indent=1, allow_nan=False)
    return atomic_write_text(result_path(out_dir, result.image_id), text + "\n")


def load_result(out_dir: str | Path, image_id: str) -> ImageResult | None:
    """The saved record of ``image_id``, or ``None`` when there is none (or it cannot be read)."""
    path = result_path(out_dir, image_id)
    try:
        return ImageResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def load_results(out_dir: str | Path, image_ids: Iterable[str]) -> list[ImageResult]:
    """The saved records of ``image_ids``, in that order, skipping any not saved."""
    loaded = (load_result(out_dir, image_id) for image_id in image_ids)
    return [result for result in loaded if result is not None]


def write_tables(out_dir: str | Path, results: Sequence[ImageResult]) -> tuple[Path, Path]:
    """Write ``results.csv`` (one row per photograph, :data:`TABLE_COLUMNS`) and ``results.json``
    (a list of full records) into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({key: "" if value is None else value for key, value in result.as_dict().items()})
    csv_path = atomic_write_text(out_dir / RESULTS_CSV, buffer.getvalue())
    records = [result.as_dict() for result in results]
    json_path = atomic_write_text(out_dir / RESULTS_JSON, json.dumps(records, indent=1, allow_nan=False) + "\n")
    return csv_path, json_path
