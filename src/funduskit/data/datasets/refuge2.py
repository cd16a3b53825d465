"""REFUGE2 (2020): a root with ``Train/``, ``Validation/``, ``Test/``, or one split folder alone.

A split folder (REFUGE2 ``Validation/`` and ``Test/``, and what ``funduskit synth`` writes)::

    Images/V0001.jpg
    Disc_Masks/V0001.png        0 = cup, 128 = rim, 255 = background (optional)
    Vessel_Masks/V0001.png      0 / 255 (optional; a funduskit extra)
    glaucoma.csv                FileName, Glaucoma Risk (0/1)
    fovea.csv                   ImageName, Fovea_X, Fovea_Y
    synth.json                  (synthetic sets only) per-image truth; "cases"[i]["name"/"eye"] is read

``Train/`` holds REFUGE 2018's three sets (``REFUGE1-train``, ``REFUGE1-val``, ``REFUGE1-test``, or
the original download folders) and is read by :mod:`funduskit.data.datasets.refuge`; its samples get
``split="train"`` and keep their REFUGE 2018 split in ``extra["refuge1_split"]``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.datasets import refuge
from funduskit.data.datasets._files import (
    FileIndex,
    child_dir,
    list_images,
    matching_file,
    split_from_path,
)
from funduskit.data.datasets._format import DatasetFormat
from funduskit.data.datasets._tables import (
    annotated_sample,
    find_tables,
    read_annotations,
)
from funduskit.data.sample import Sample

IMAGE_FOLDERS = ("Images", "refuge2-test")
MASK_FOLDERS = ("Disc_Masks", "Disc_Mask")
VESSEL_FOLDERS = ("Vessel_Masks",)
TABLE_WORDS = ("glaucoma", "fovea", "label")
"""A spreadsheet in a split folder is read when its file name contains one of these words."""
ROOT_SPLITS = {"Train": "train", "Validation": "validation", "Test": "test"}


#: The per-image truth that funduskit's synthetic sets write beside the REFUGE2 layout (funduskit.synthetic).
SYNTH_MANIFEST = "synth.json"

def is_split_folder(folder: Path) -> bool:
    """An ``Images`` folder beside a ``Disc_Masks`` folder or a glaucoma/fovea spreadsheet."""
    if child_dir(folder, *IMAGE_FOLDERS) is None:
        return False
    return child_dir(folder, *MASK_FOLDERS) is not None or bool(_tables(folder))


def is_root(folder: Path) -> bool:
    """A ``Validation`` or ``Test`` split folder, or a ``Train`` folder holding REFUGE 2018."""
    train = child_dir(folder, "Train")
    if train is not None and refuge.detect(train):
        return True
    return any(
        (split := child_dir(folder, name)) is not None and is_split_folder(split)
        for name in ("Validation", "Test")
    )


def detect(folder: Path) -> bool:
    return is_root(folder) or is_split_folder(folder)


def _tables(folder: Path) -> list[Path]:
    return [p for p in find_tables(folder) if any(w in p.name.lower() for w in TABLE_WORDS)]


def _synth_eyes(folder: Path) -> dict[str, str]:
    """Eye side per image stem (lower case) from the ``cases`` of ``synth.json``; empty without one."""
    path = folder / SYNTH_MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, f"is not valid JSON ({error})", fix="generate the set again") from error
    cases = manifest.get("cases", []) if isinstance(manifest, dict) else []
    return {
        Path(case["name"]).stem.lower(): case["eye"]
        for case in cases
        if isinstance(case, dict) and isinstance(case.get("name"), str) and case.get("eye") in ("left", "right")
    }


def read_split_folder(folder: Path, split: str | None) -> list[Sample]:
    """Every photograph of one REFUGE2-style split folder.

    Raises:
        DataError: a mask is missing or of the wrong size, a spreadsheet lacks its columns,
            names a photograph that is not there, or holds a label other than 0/1.
    """
    images_dir = child_dir(folder, *IMAGE_FOLDERS)
    if images_dir is None:
        raise DataError(folder, "has no Images folder", fix="point at a REFUGE2 split folder")
    images = list_images(images_dir)
    if not images:
        raise DataError(images_dir, "holds no images (.jpg, .png, .bmp, .tif)")
    annotations = read_annotations(_tables(folder), FileIndex(images, images_dir))
    mask_dir = child_dir(folder, *MASK_FOLDERS)
    vessel_dir = child_dir(folder, *VESSEL_FOLDERS)
    masks = FileIndex(list_images(mask_dir), mask_dir) if mask_dir else None
    vessels = FileIndex(list_images(vessel_dir), vessel_dir) if vessel_dir else None
    eyes = _synth_eyes(folder)
    samples = []
    for image in images:
        samples.append(annotated_sample(
            image, annotations.get(image),
            disc_cup_mask_path=matching_file(masks, image, "disc/cup mask", required=True),
            vessel_mask_path=matching_file(vessels, image, "vessel mask", required=True),
            eye=eyes.get(image.stem.lower()),  # type: ignore[arg-type]
            source="refuge2",
            split=split,
            mask_format="refuge",
        ))
    return samples


def read(folder: Path) -> list[Sample]:
    """A REFUGE2 root (its three splits) or a single split folder."""
    if not is_root(folder):
        return read_split_folder(folder, split_from_path(Path(folder.name)))
    samples: list[Sample] = []
    for name, split in ROOT_SPLITS.items():
        part = child_dir(folder, name)
        if part is None:
            continue
        if split == "train":
            samples += [
                dataclasses.replace(s, source="refuge2", split="train",
                                    extra={**s.extra, "refuge1_split": s.split})
                for s in refuge.read_samples(part, source="refuge2")
            ]
        elif is_split_folder(part):
            samples += read_split_folder(part, split)
    return samples


FORMAT = DatasetFormat(
    name="refuge2",
    looks_for="Train/ + Validation/ + Test/ (REFUGE2 root), or an Images folder beside Disc_Masks "
    "or glaucoma.csv / fovea.csv (one REFUGE2 split, the synthetic layout)",
    detect=detect,
    read=read,
)
