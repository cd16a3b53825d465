"""Writing a synthetic data set in the layout of one REFUGE2 split folder.

::

    OUT/Images/S0001.jpg        photos (JPEG quality 92)
    OUT/Disc_Masks/S0001.png    0 = cup, 128 = rim, 255 = background
    OUT/Vessel_Masks/S0001.png  0 / 255
    OUT/glaucoma.csv            FileName,Glaucoma Risk
    OUT/fovea.csv               ImageName,Fovea_X,Fovea_Y
    OUT/synth.json              generator settings and per-image truth

Case ``i`` is a pure function of ``(seed, i, its label, scale)``: its random generator is seeded
from ``(seed, i)`` alone, so cases can be rendered in any order or in parallel. Labels are the
only thing shared: exactly ``round(glaucoma_fraction * n)`` positives, placed by a permutation
seeded from ``seed``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from funduskit.core.errors import FunduskitError
from funduskit.data.datasets.refuge2 import SYNTH_MANIFEST
from funduskit.scoring.metrics import CDR_EPS, cup_of, disc_of, vertical_diameter
from funduskit.synthetic.case import CaseParams
from funduskit.synthetic.params import draw_case_params
from funduskit.synthetic.render import render_case

JPEG_QUALITY = 92
IMAGE_DIR, DISC_DIR, VESSEL_DIR = "Images", "Disc_Masks", "Vessel_Masks"
GLAUCOMA_CSV, FOVEA_CSV, MANIFEST = "glaucoma.csv", "fovea.csv", SYNTH_MANIFEST
_CASE_STREAM, _LABEL_STREAM = 0, 1


@dataclass(frozen=True)
class SyntheticCase:
    """The truth about one generated image (one entry of ``synth.json``); pixels of the written image.

    Attributes:
        name: image file name, e.g. ``S0001.jpg`` (the REFUGE2 ``FileName`` / ``ImageName``).
        index: 0-based case index; the case's generator is seeded from ``(seed, index)``.
        label: 1 = glaucoma.
        camera: ``"zeiss"`` (2124 x 2056 at scale 1) or ``"canon"`` (1634 x 1634).
        eye: ``"left"`` (disc left of the fovea) or ``"right"``.
        width, height: image size.
        fovea: fovea centre ``(x, y)``.
        disc_center: disc centre ``(x, y)``.
        disc_height, cup_height: REFUGE vertical diameters (largest column count) of the masks.
        vcdr: vertical cup-to-disc ratio of the written mask (official definition).
        vcdr_target: the ratio the cup was drawn for (before rasterisation).
        notch: whether the rim has a focal notch.
        fov_center, fov_radius: field-of-view circle.
    """

    name: str
    index: int
    label: int
    camera: str
    eye: str
    width: int
    height: int
    fovea: tuple[float, float]
    disc_center: tuple[float, float]
    disc_height: int
    cup_height: int
    vcdr: float
    vcdr_target: float
    notch: bool
    fov_center: tuple[float, float]
    fov_radius: float


def case_name(index: int, n: int) -> str:
    """``S0001.jpg`` for index 0; more digits once ``n`` needs them."""
    return f"S{index + 1:0{max(4, len(str(n)))}d}.jpg"


def case_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of case ``index``: depends on ``(seed, index)`` only."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CASE_STREAM, index)))


def draw_labels(n: int, seed: int, glaucoma_fraction: float) -> np.ndarray:
    """``(n,)`` int labels with exactly ``round(glaucoma_fraction * n)`` ones, shuffled by ``seed``."""
    positives = round(glaucoma_fraction * n)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_LABEL_STREAM,))).permutation(n)
    labels = np.zeros(n, dtype=int)
    labels[order[:positives]] = 1
    return labels


def generate_case(
    seed: int, index: int, label: int, scale: float = 1.0, n: int = 9999
) -> tuple[SyntheticCase, np.ndarray, np.ndarray, np.ndarray]:
    """Draws and renders case ``index``; returns its record, RGB image, REFUGE mask and vessel mask."""
    params = draw_case_params(case_rng(seed, index), label=label, scale=scale)
    image, disc_cup_mask, vessel_mask = render_case(params)
    return describe_case(params, case_name(index, n), index, disc_cup_mask), image, disc_cup_mask, vessel_mask


def describe_case(params: CaseParams, name: str, index: int, disc_cup_mask: np.ndarray) -> SyntheticCase:
    """The :class:`SyntheticCase` record of rendered ``params`` (coordinates in output pixels)."""
    width, height = params.output_size
    camera = params.camera_model
    sx, sy = width / camera.width, height / camera.height
    anatomy = params.anatomy
    disc_height = vertical_diameter(disc_of(disc_cup_mask))
    cup_height = vertical_diameter(cup_of(disc_cup_mask))
    return SyntheticCase(
        name=name,
        index=index,
        label=params.label,
        camera=params.camera,
        eye=params.eye,
        width=width,
        height=height,
        fovea=(round(anatomy.fovea[0] * sx, 2), round(anatomy.fovea[1] * sy, 2)),
        disc_center=(round(anatomy.disc_center[0] * sx, 2), round(anatomy.disc_center[1] * sy, 2)),
        disc_height=disc_height,
        cup_height=cup_height,
        vcdr=round(cup_height / (disc_height + CDR_EPS), 4),
        vcdr_target=round(anatomy.vcdr_target, 4),
        notch=anatomy.notch_angle is not None,
        fov_center=(round(anatomy.fov_center[0] * sx, 2), round(anatomy.fov_center[1] * sy, 2)),
        fov_radius=round(anatomy.fov_radius * (sx + sy) / 2, 2),
    )


def generate_dataset(
    out: Path,
    n: int,
    seed: int,
    scale: float = 1.0,
    glaucoma_fraction: float = 0.1,
    *,
    progress: bool = False,
) -> list[SyntheticCase]:
    """Writes ``n`` synthetic cases to ``out`` in the REFUGE2 split-folder layout.

    ``out`` may be missing, empty, or a folder this function wrote before (its files are replaced);
    any other non-empty folder is refused so that no user data is overwritten.

    Args:
        out: destination folder.
        n: number of images (>= 1).
        seed: non-negative seed; the same seed gives the same masks, CSVs and (on one machine) JPEGs.
        scale: output size relative to the cameras' full frames (0.25 gives 531 x 514 and 408 x 408).
        glaucoma_fraction: fraction of positives, rounded to a whole number of images.
        progress: show a progress bar.

    Returns:
        One :class:`SyntheticCase` per image, in file-name order.
    """
    out = Path(out)
    _check_arguments(out, n, seed, scale, glaucoma_fraction)
    _prepare_folder(out)
    labels = draw_labels(n, seed, glaucoma_fraction)
    indices = range(n)
    if progress:
        from funduskit.core.progress import track

        indices = track(indices, f"synthesising {n} images")  # type: ignore[assignment]
    cases = []
    for index in indices:
        case, image, disc_cup_mask, vessel_mask = generate_case(seed, index, int(labels[index]), scale, n)
        stem = Path(case.name).stem
        _write(out / IMAGE_DIR / case.name, ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        _write(out / DISC_DIR / f"{stem}.png", ".png", disc_cup_mask)
        _write(out / VESSEL_DIR / f"{stem}.png", ".png", vessel_mask.astype(np.uint8) * 255)
        cases.append(case)
    _write_tables(out, cases, seed=seed, scale=scale, glaucoma_fraction=glaucoma_fraction)
    return cases


def _check_arguments(out: Path, n: int, seed: int, scale: float, glaucoma_fraction: float) -> None:
    if n < 1:
        raise FunduskitError(f"synth {out}: --n must be at least 1, got {n}")
    if seed < 0:
        raise FunduskitError(f"synth {out}: --seed must be a non-negative integer, got {seed}")
    if not 0.05 <= scale <= 2.0:
        raise FunduskitError(f"synth {out}: --scale must be between 0.05 and 2, got {scale}")
    if not 0.0 <= glaucoma_fraction <= 1.0:
        raise FunduskitError(f"synth {out}: --glaucoma-fraction must be between 0 and 1, got {glaucoma_fraction}")


def _prepare_folder(out: Path) -> None:
    """Creates the layout; clears a previous synthetic set; refuses any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise FunduskitError(f"{out}: exists and is not a folder (choose a new output folder)")
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise FunduskitError(
                f"{out}: folder is not empty and holds no {MANIFEST} from an earlier `funduskit synth` "
                "(choose an empty or new folder so nothing of yours is overwritten)"
            )
        for folder, pattern in ((IMAGE_DIR, "S*.jpg"), (DISC_DIR, "S*.png"), (VESSEL_DIR, "S*.png")):
            for stale in (out / folder).glob(pattern):
                stale.unlink()
        for table in (GLAUCOMA_CSV, FOVEA_CSV, MANIFEST):
            (out / table).unlink(missing_ok=True)
    for folder in (IMAGE_DIR, DISC_DIR, VESSEL_DIR):
        (out / folder).mkdir(parents=True, exist_ok=True)


def _write(path: Path, extension: str, array: np.ndarray, options: list[int] | None = None) -> None:
    ok, encoded = cv2.imencode(extension, array, options or [])
    if not ok:
        raise FunduskitError(f"{path}: OpenCV could not encode the image as {extension}")
    path.write_bytes(encoded.tobytes())


def _write_tables(out: Path, cases: list[SyntheticCase], *, seed: int, scale: float,
                  glaucoma_fraction: float) -> None:
    glaucoma = ["FileName,Glaucoma Risk"] + [f"{case.name},{case.label}" for case in cases]
    fovea = ["ImageName,Fovea_X,Fovea_Y"] + [f"{case.name},{case.fovea[0]:.2f},{case.fovea[1]:.2f}" for case in cases]
    (out / GLAUCOMA_CSV).write_text("\n".join(glaucoma) + "\n", encoding="utf-8")
    (out / FOVEA_CSV).write_text("\n".join(fovea) + "\n", encoding="utf-8")
    from funduskit import __version__

    manifest = {
        "generator": "funduskit.synthetic",
        "funduskit_version": __version__,
        "seed": seed,
        "n": len(cases),
        "scale": scale,
        "glaucoma_fraction": glaucoma_fraction,
        "positives": sum(case.label for case in cases),
        "jpeg_quality": JPEG_QUALITY,
        "mask_values": {"cup": 0, "rim": 128, "background": 255},
        "cases": [asdict(case) for case in cases],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
