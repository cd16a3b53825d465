"""The synthetic REFUGE2-layout generator: layout, masks, geometry, labels, determinism, CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from funduskit.core.errors import FunduskitError
from funduskit.scoring.metrics import vertical_cdr
from funduskit.synthetic import (
    CAMERAS,
    case_rng,
    draw_case_params,
    draw_labels,
    generate_case,
    generate_dataset,
    render_case,
)

N = 12
SEED = 5
SCALE = 0.2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    generate_dataset(out, n=N, seed=SEED, scale=SCALE)
    return out


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def manifest(out: Path) -> dict:
    return json.loads((out / "synth.json").read_text())


def test_layout_files_and_headers(dataset: Path) -> None:
    names = [f"S{i:04d}.jpg" for i in range(1, N + 1)]
    assert sorted(p.name for p in (dataset / "Images").iterdir()) == names
    for folder in ("Disc_Masks", "Vessel_Masks"):
        assert sorted(p.name for p in (dataset / folder).iterdir()) == [n.replace(".jpg", ".png") for n in names]
    header, rows = read_csv(dataset / "glaucoma.csv")
    assert header == ["FileName", "Glaucoma Risk"]
    assert [row[0] for row in rows] == names and {row[1] for row in rows} <= {"0", "1"}
    header, rows = read_csv(dataset / "fovea.csv")
    assert header == ["ImageName", "Fovea_X", "Fovea_Y"]
    assert [row[0] for row in rows] == names
    info = manifest(dataset)
    assert (info["seed"], info["n"], info["scale"]) == (SEED, N, SCALE)
    assert [case["name"] for case in info["cases"]] == names


def test_masks_hold_refuge_values_at_the_image_size(dataset: Path) -> None:
    for image_path in sorted((dataset / "Images").glob("*.jpg")):
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        disc_cup = cv2.imread(str(dataset / "Disc_Masks" / f"{image_path.stem}.png"), cv2.IMREAD_UNCHANGED)
        vessels = cv2.imread(str(dataset / "Vessel_Masks" / f"{image_path.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert disc_cup.ndim == 2 and vessels.ndim == 2
        assert disc_cup.shape == vessels.shape == image.shape[:2]
        assert set(np.unique(disc_cup)) == {0, 128, 255}
        assert set(np.unique(vessels)) == {0, 255}
        assert 0.02 < (vessels == 255).mean() < 0.25


def test_image_sizes_follow_the_cameras_and_scale(dataset: Path) -> None:
    for case in manifest(dataset)["cases"]:
        camera = CAMERAS[case["camera"]]
        expected = (round(camera.width * SCALE), round(camera.height * SCALE))
        assert (case["width"], case["height"]) == expected
        image = cv2.imread(str(dataset / "Images" / case["name"]))
        assert image.shape[1::-1] == expected


def test_cup_lies_inside_the_disc_with_a_rim_all_round(dataset: Path) -> None:
    for mask_path in sorted((dataset / "Disc_Masks").glob("*.png")):
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        cup = (mask == 0).astype(np.uint8)
        # No cup pixel touches the background: growing the cup by one pixel stays within the disc.
        grown = cv2.dilate(cup, np.ones((3, 3), np.uint8)).astype(bool)
        assert not (grown & (mask == 255)).any(), mask_path.name
        assert cv2.connectedComponents(cup)[0] == 2  # background + one cup


def test_recorded_vcdr_is_the_official_vcdr_of_the_mask(dataset: Path) -> None:
    for case in manifest(dataset)["cases"]:
        mask = cv2.imread(str(dataset / "Disc_Masks" / case["name"].replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
        assert case["vcdr"] == pytest.approx(vertical_cdr(mask), abs=1e-4)
        assert 0.1 < case["vcdr"] < 0.95


def test_fovea_in_the_fov_and_on_the_temporal_side_of_the_disc(dataset: Path) -> None:
    _, rows = read_csv(dataset / "fovea.csv")
    fovea = {name: (float(x), float(y)) for name, x, y in rows}
    for case in manifest(dataset)["cases"]:
        fx, fy = fovea[case["name"]]
        (cx, cy), radius = case["fov_center"], case["fov_radius"]
        assert np.hypot(fx - cx, fy - cy) < 0.6 * radius
        mask = cv2.imread(str(dataset / "Disc_Masks" / case["name"].replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
        disc_y, disc_x = np.argwhere(mask < 255).mean(axis=0)
        # Right eye: disc right of the fovea in the image (as in REFUGE); left eye: mirrored.
        assert (disc_x > fx) == (case["eye"] == "right"), case["name"]
        distance = np.hypot(fx - disc_x, fy - disc_y)
        assert 0.3 * case["width"] < distance < 0.46 * case["width"]
        below_degrees = np.degrees(np.arctan2(fy - disc_y, abs(fx - disc_x)))
        assert -6 < below_degrees < 20
        image = cv2.imread(str(dataset / "Images" / case["name"]))
        assert image[int(fy), int(fx)].max() > 15  # inside the lit field of view


def test_outside_the_fov_is_black(dataset: Path) -> None:
    for image_path in sorted((dataset / "Images").glob("*.jpg"))[:4]:
        image = cv2.imread(str(image_path))
        for corner in (image[:8, :8], image[-8:, :8], image[:8, -8:], image[-8:, -8:]):
            assert corner.max() < 20


@pytest.mark.parametrize("n, fraction", [(12, 0.1), (10, 0.1), (25, 0.1), (7, 0.5), (40, 0.25), (3, 0.0)])
def test_labels_have_exactly_the_rounded_number_of_positives(n: int, fraction: float) -> None:
    labels = draw_labels(n, seed=3, glaucoma_fraction=fraction)
    assert labels.sum() == round(fraction * n) and labels.shape == (n,)


def test_positives_in_the_written_set(dataset: Path) -> None:
    _, rows = read_csv(dataset / "glaucoma.csv")
    assert sum(int(row[1]) for row in rows) == round(0.1 * N)


def test_glaucoma_cases_have_larger_vcdr(tmp_path: Path) -> None:
    cases = generate_dataset(tmp_path / "half", n=10, seed=8, scale=0.15, glaucoma_fraction=0.5)
    glaucoma = [case.vcdr for case in cases if case.label == 1]
    normal = [case.vcdr for case in cases if case.label == 0]
    assert len(glaucoma) == len(normal) == 5
    assert np.mean(glaucoma) > np.mean(normal) + 0.15
    notches_or_thin = [case for case in cases if case.label == 1 and (case.vcdr > 0.6 or case.notch)]
    assert len(notches_or_thin) >= 3


def test_label_does_not_change_camera_eye_appearance_or_placement() -> None:
    normal = draw_case_params(case_rng(21, 4), label=0, scale=0.1)
    glaucoma = draw_case_params(case_rng(21, 4), label=1, scale=0.1)
    assert (normal.camera, normal.eye) == (glaucoma.camera, glaucoma.eye)
    assert asdict(normal.appearance) == asdict(glaucoma.appearance)
    assert normal.anatomy.fovea == glaucoma.anatomy.fovea
    np.testing.assert_array_equal(normal.anatomy.disc_contour, glaucoma.anatomy.disc_contour)
    assert normal.anatomy.vcdr_target != glaucoma.anatomy.vcdr_target


def _file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    first = _file_bytes(_generate(tmp_path / "a", seed=4))
    second = _file_bytes(_generate(tmp_path / "b", seed=4))
    assert first.keys() == second.keys()
    for name in first:  # masks, CSVs and synth.json identical; JPEGs too on one machine
        assert first[name] == second[name], name
    other = _file_bytes(_generate(tmp_path / "c", seed=9))
    assert other["Disc_Masks/S0001.png"] != first["Disc_Masks/S0001.png"]
    assert other["fovea.csv"] != first["fovea.csv"]


def _generate(out: Path, seed: int) -> Path:
    generate_dataset(out, n=3, seed=seed, scale=0.15)
    return out


def test_a_case_depends_only_on_seed_and_index(tmp_path: Path) -> None:
    out = _generate(tmp_path / "set", seed=4)
    label = int(manifest(out)["cases"][2]["label"])
    _, _, disc_cup_mask, vessel_mask = generate_case(4, 2, label, scale=0.15)
    np.testing.assert_array_equal(cv2.imread(str(out / "Disc_Masks/S0003.png"), cv2.IMREAD_UNCHANGED), disc_cup_mask)
    np.testing.assert_array_equal(cv2.imread(str(out / "Vessel_Masks/S0003.png"), cv2.IMREAD_UNCHANGED) > 0,
                                  vessel_mask)


@pytest.mark.parametrize("camera, eye", [("zeiss", "left"), ("canon", "right")])
def test_render_case_returns_photo_and_masks(camera: str, eye: str) -> None:
    params = draw_case_params(np.random.default_rng(1), label=1, scale=0.15, camera=camera, eye=eye)
    image, disc_cup_mask, vessel_mask = render_case(params)
    height, width = disc_cup_mask.shape
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert disc_cup_mask.dtype == np.uint8 and vessel_mask.dtype == bool and vessel_mask.shape == (height, width)
    assert (width, height) == params.output_size
    # The disc is the brightest structure, the vessels are darker than the retina around them.
    disc = disc_cup_mask < 255
    lit = image.max(axis=2) > 20
    retina = lit & ~disc & ~vessel_mask
    assert image[disc].mean() > image[retina].mean() + 30
    near_vessels = cv2.dilate(vessel_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert image[vessel_mask & ~disc, 1].mean() < image[near_vessels & ~vessel_mask & retina, 1].mean()


def test_refuses_a_foreign_non_empty_folder_and_replaces_its_own(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FunduskitError, match="not empty"):
        generate_dataset(foreign, n=1, seed=0, scale=0.1)
    assert (foreign / "notes.txt").read_text() == "keep me"

    own = tmp_path / "own"
    generate_dataset(own, n=3, seed=0, scale=0.1)
    generate_dataset(own, n=2, seed=0, scale=0.1)
    assert sorted(p.name for p in (own / "Images").iterdir()) == ["S0001.jpg", "S0002.jpg"]
    assert len(read_csv(own / "glaucoma.csv")[1]) == 2


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"seed": -1}, {"scale": 0}, {"glaucoma_fraction": 1.5}])
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    arguments = {"n": 2, "seed": 0, "scale": 0.1, "glaucoma_fraction": 0.1, **kwargs}
    with pytest.raises(FunduskitError):
        generate_dataset(tmp_path / "x", **arguments)


def test_cli_writes_the_layout(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "funduskit", "synth", str(out), "--n", "2", "--seed", "1", "--scale", "0.12",
         "--glaucoma-fraction", "0.5"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote 2 images" in result.stdout
    _, rows = read_csv(out / "glaucoma.csv")
    assert sorted(row[1] for row in rows) == ["0", "1"]
    assert (out / "Vessel_Masks" / "S0002.png").is_file()


def test_cli_reports_a_foreign_folder_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "funduskit", "synth", str(tmp_path), "--n", "1", "--scale", "0.1"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "not empty" in result.stderr and "Traceback" not in result.stderr
