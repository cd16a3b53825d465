"""The one record every data set reader yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

EyeSide = Literal["left", "right"]
View = Literal["whole", "disc"]
#: The views a photograph can have (whole fundus photograph, crop centred on the optic disc).
VIEWS: tuple[View, ...] = ("whole", "disc")


@dataclass(frozen=True)
class Sample:
    """One fundus photograph and whatever annotations its data set carries.

    Attributes:
        image_id: the name used in submissions and result tables (the file name, e.g. ``V0001.jpg``).
        image_path: the photograph on disk.
        disc_cup_mask_path: REFUGE-convention mask (0 = cup, 128 = rim, 255 = background), or a
            file that ``mask_format`` says how to convert.
        vessel_mask_path: binary vessel mask (0 / 255).
        fovea: fovea centre ``(x, y)`` in original-image pixels.
        label: glaucoma label, 1 = glaucoma, 0 = not.
        eye: ``"left"`` or ``"right"`` when known.
        source: the layout it was read from (``"refuge2"``, ``"drishti-gs1"``, ...).
        split: the data set's own split name when it has one (``"train"``, ``"validation"``, ...).
        mask_format: how ``disc_cup_mask_path`` is stored (``funduskit.data.datasets.masks``).
        view: ``"whole"`` (a whole fundus photograph) or ``"disc"`` (a crop centred on the optic
            disc) when the layout says so; ``None`` when unknown.
        extra: reader-specific paths or values (e.g. a second cup mask); never needed by training.
    """

    image_id: str
    image_path: Path
    disc_cup_mask_path: Path | None = None
    vessel_mask_path: Path | None = None
    fovea: tuple[float, float] | None = None
    label: int | None = None
    eye: EyeSide | None = None
    source: str = "folder"
    split: str | None = None
    mask_format: str = "refuge"
    view: View | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)
