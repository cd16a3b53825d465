"""Dataset readers: each layout is built for real on disk (small images written with cv2/PIL,
spreadsheets with the data sets' own column names) and read back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.datasets import (
    FORMATS,
    detect_format,
    has_cup_annotation,
    load_disc_cup_mask,
    load_vessel_mask,
    read_dataset,
)
from funduskit.data.datasets.riga import ink_mask, outlines_to_disc_cup
from funduskit.data.sample import Sample

W, H = 80, 72  # every photograph here is 80 wide, 72 high (io refuses sides under 64)
DISC_CENTRE, DISC_AXES, CUP_AXES = (40, 36), (18, 16), (8, 7)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def photo(path: Path, size: tuple[int, int] = (W, H), seed: int = 0) -> Path:
    """A smooth, dim colour photograph (low green, so drawn outlines stand out)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 120, (4, 4, 3), dtype=np.uint8)
    image = cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
    image[..., 1] //= 2
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def refuge_mask(path: Path, size: tuple[int, int] = (W, H), values: tuple[int, int, int] = (255, 128, 0)) -> Path:
    """0 cup inside 128 disc on 255 background (``values`` = background, rim, cup)."""
    mask = np.full(size[::-1], values[0], np.uint8)
    cv2.ellipse(mask, DISC_CENTRE, DISC_AXES, 0, 0, 360, values[1], -1)
    cv2.ellipse(mask, DISC_CENTRE, CUP_AXES, 0, 0, 360, values[2], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask)
    return path


def disc_mask(path: Path, *, disc: int, background: int, red: bool = False) -> Path:
    mask = np.full((H, W), background, np.uint8)
    cv2.ellipse(mask, DISC_CENTRE, DISC_AXES, 0, 0, 360, disc, -1)
    if red:  # IDRiD: the disc drawn in red on black
        mask = np.dstack([np.zeros_like(mask), np.zeros_like(mask), mask])  # BGR
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask)
    return path


def vessel_mask(path: Path, size: tuple[int, int] = (W, H)) -> Path:
    mask = np.zeros(size[::-1], np.uint8)
    cv2.line(mask, (5, 5), (size[0] - 5, size[1] - 5), 255, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        Image.fromarray(mask).convert("P").save(path)
    else:
        assert cv2.imwrite(str(path), mask)
    return path


def table(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------------------------
# Layout builders: each returns the folder to point funduskit at
# --------------------------------------------------------------------------------------------


def build_refuge2_split(root: Path) -> Path:
    """What `funduskit synth` writes: one REFUGE2 split folder."""
    for i, name in enumerate(["S0001", "S0002", "S0003"]):
        photo(root / "Images" / f"{name}.jpg", seed=i)
        refuge_mask(root / "Disc_Masks" / f"{name}.png")
        vessel_mask(root / "Vessel_Masks" / f"{name}.png")
    table(root / "glaucoma.csv", [{"FileName": f"S000{i}.jpg", "Glaucoma Risk": i % 2} for i in (1, 2, 3)])
    table(root / "fovea.csv", [{"ImageName": f"S000{i}.jpg", "Fovea_X": 10.5 * i, "Fovea_Y": 20.0} for i in (1, 2, 3)])
    (root / "synth.json").write_text(json.dumps({"seed": 0, "cases": [  # as funduskit.synthetic writes it
        {"name": "S0001.jpg", "eye": "left", "label": 1}, {"name": "S0002.jpg", "eye": "right", "label": 0}]}))
    return root


def _refuge1_train(base: Path) -> None:
    for group, name in (("Glaucoma", "g0001"), ("Non-Glaucoma", "n0001"), ("Non-Glaucoma", "n0002")):
        photo(base / "Training400" / group / f"{name}.jpg")
        refuge_mask(base / "Disc_Cup_Masks" / group / f"{name}.bmp")
    table(base / "Fovea_location.xlsx", [
        {"ID": i + 1, "ImgName": n, "Fovea_X": 50.0 + i, "Fovea_Y": 30.0}
        for i, n in enumerate(["g0001.jpg", "n0001.jpg", "n0002.jpg"])])


def build_refuge2_root(root: Path) -> Path:
    _refuge1_train(root / "Train" / "REFUGE1-train")
    val = root / "Train" / "REFUGE1-val"
    photo(val / "REFUGE-Validation400" / "V0001.jpg")
    refuge_mask(val / "Disc_Cup_Masks" / "V0001.bmp")
    table(val / "Fovea_locations.xlsx", [{"ID": 1, "ImgName": "V0001.jpg", "Fovea_X": 1.0, "Fovea_Y": 2.0,
                                          "Glaucoma Label": 1}])
    for split in ("Validation", "Test"):
        build_refuge2_split(root / split)
        (root / split / "synth.json").unlink()
    return root


def build_refuge(root: Path) -> Path:
    """REFUGE 2018 as downloaded: three image archives and three ground-truth archives."""
    _refuge1_train(root / "REFUGE-Training400")
    (root / "REFUGE-Training400" / "Disc_Cup_Masks").rename(root / "REFUGE-Training400" / "tmp")
    (root / "Annotation-Training400").mkdir()
    (root / "REFUGE-Training400" / "tmp").rename(root / "Annotation-Training400" / "Disc_Cup_Masks")
    spreadsheet = "Fovea_location.xlsx"
    (root / "REFUGE-Training400" / spreadsheet).rename(root / "Annotation-Training400" / spreadsheet)
    photo(root / "REFUGE-Validation400" / "REFUGE-Validation400" / "V0001.jpg", size=(96, 96))
    refuge_mask(root / "REFUGE-Validation400-GT" / "Disc_Cup_Masks" / "V0001.bmp", size=(96, 96))
    table(root / "REFUGE-Validation400-GT" / "Fovea_locations.xlsx",
          [{"ID": 1, "ImgName": "V0001.jpg", "Fovea_X": 60.0, "Fovea_Y": 50.0, "Glaucoma Label": 0}])
    for name in ("T0001", "T0002"):
        photo(root / "REFUGE-Test400" / "Test400" / f"{name}.jpg")
        refuge_mask(root / "REFUGE-Test-GT" / "Disc_Cup_Masks" / f"{name}.bmp")
    table(root / "REFUGE-Test-GT" / "Glaucoma_label_and_Fovea_location.xlsx", [
        {"ID": 1, "ImgName": "T0001.jpg", "Label(Glaucoma=1)": 1, "Fovea_X": 40.0, "Fovea_Y": 41.0},
        {"ID": 2, "ImgName": "T0002.jpg", "Label(Glaucoma=1)": 0, "Fovea_X": 42.0, "Fovea_Y": 43.0}])
    return root


IDRID_FOVEA_CSV = (
    "Image No,X- Coordinate,Y - Coordinate,,,\n"
    "IDRiD_001,30,40,,,\n"
    "IDRiD_002,31,41,,,\n"
    ",,,,,\n"
    ",,,,,\n"
)


def build_idrid(root: Path) -> Path:
    seg = root / "A. Segmentation"
    for split, names in (("a. Training Set", ["IDRiD_01", "IDRiD_02"]), ("b. Testing Set", ["IDRiD_55"])):
        for name in names:
            photo(seg / "1. Original Images" / split / f"{name}.jpg")
            disc_mask(seg / "2. All Segmentation Groundtruths" / split / "5. Optic Disc" / f"{name}_OD.tif",
                      disc=255, background=0, red=True)
    loc = root / "C. Localization"
    for name in ("IDRiD_001", "IDRiD_002"):
        photo(loc / "1. Original Images" / "a. Training Set" / f"{name}.jpg")
    photo(loc / "1. Original Images" / "b. Testing Set" / "IDRiD_001.jpg")
    truths = loc / "2. Groundtruths"
    (truths / "2. Fovea Center Location").mkdir(parents=True)
    (truths / "2. Fovea Center Location" / "IDRiD_Fovea_Center_Training Set_Markups.csv").write_text(IDRID_FOVEA_CSV)
    (truths / "2. Fovea Center Location" / "IDRiD_Fovea_Center_Testing Set_Markups.csv").write_text(
        "Image No,X- Coordinate,Y - Coordinate\nIDRiD_001,12,13\n")
    table(truths / "1. Optic Disc Center Location" / "a. IDRiD_OD_Center_Training Set_Markups.csv",
          [{"Image No": "IDRiD_001", "X- Coordinate": 60, "Y - Coordinate": 35}])
    return root


def build_palm(root: Path) -> Path:
    train = root / "PALM-Training400"
    for name in ("H0001", "N0001", "P0001"):
        photo(train / "PALM-Training400" / f"{name}.jpg")
        disc_mask(train / "PALM-Training400-Annotation-D&F" / "Disc_Masks" / f"{name}.bmp", disc=0, background=255)
    table(train / "PALM-Training400-Annotation-D&F" / "Fovea_Location_train.xlsx", [
        {"ID": 1, "imgName": "H0001.jpg", "Fovea_X": 33.0, "Fovea_Y": 34.0},
        {"ID": 2, "imgName": "N0001.jpg", "Fovea_X": 0, "Fovea_Y": 0},  # not visible
        {"ID": 3, "imgName": "P0001.jpg", "Fovea_X": 35.0, "Fovea_Y": 36.0}])
    photo(root / "PALM-Validation400" / "V0001.jpg")
    table(root / "PALM-Validation-GT" / "PM_Label_and_Fovea_Location.xlsx",
          [{"ID": 1, "imgName": "V0001.jpg", "Label": 1, "Fovea_X": 20.0, "Fovea_Y": 21.0}])
    return root


def build_adam(root: Path) -> Path:
    train = root / "Training400"
    photo(train / "AMD" / "A0001.jpg")
    photo(train / "Non-AMD" / "N0001.jpg")
    disc_mask(train / "Disc_Masks" / "A0001.bmp", disc=0, background=255)
    table(train / "Fovea_location.xlsx", [{"ID": 1, "imgName": "A0001.jpg", "Fovea_X": 5.0, "Fovea_Y": 6.0},
                                         {"ID": 2, "imgName": "N0001.jpg", "Fovea_X": 7.0, "Fovea_Y": 8.0}])
    return root


RIGA_SIZE = (96, 88)


def _draw_outlines(image: np.ndarray, cup_axes: tuple[int, int]) -> np.ndarray:
    marked = image.copy()
    cv2.ellipse(marked, (48, 44), (24, 20), 0, 0, 360, (0, 255, 255), 1)  # BGR yellow
    cv2.ellipse(marked, (48, 44), cup_axes, 0, 0, 360, (0, 255, 255), 1)
    return marked


def build_riga(root: Path) -> Path:
    """Three raters per photograph; the third draws a much larger cup (outvoted)."""
    for subset, suffix in (("MESSIDOR", ".tif"), ("BinRushed/BinRushed2", ".png")):
        folder = root / subset
        prime = photo(folder / f"image1prime{suffix}", size=RIGA_SIZE)
        image = cv2.imread(str(prime))
        for rater, cup in ((1, (10, 9)), (2, (11, 9)), (3, (18, 15))):
            assert cv2.imwrite(str(folder / f"image1-{rater}{suffix}"), _draw_outlines(image, cup))
    return root


def build_drishti(root: Path) -> Path:
    """The original download's layout (Training/Images + Training/GT/<id>/SoftMap)."""
    base = root / "Drishti-GS1_files" / "Training"
    for name in ("drishtiGS_002", "drishtiGS_004"):
        photo(base / "Images" / f"{name}.png")
        softmaps = base / "GT" / name / "SoftMap"
        softmaps.mkdir(parents=True)
        for kind, axes in (("OD", DISC_AXES), ("cup", CUP_AXES)):
            soft = np.zeros((H, W), np.uint8)
            for level, grow in zip((64, 128, 191, 255), (3, 2, 1, 0)):  # nested: more experts inside
                cv2.ellipse(soft, DISC_CENTRE, (axes[0] + grow, axes[1] + grow), 0, 0, 360, level, -1)
            assert cv2.imwrite(str(softmaps / f"{name}_{kind}segSoftmap.png"), soft)
        (base / "GT" / name / f"{name}_cdrValues.txt").write_text("0.5 0.55 0.6 0.52")
    return root


def build_drive(root: Path) -> Path:
    for split, number in (("training", "21"), ("test", "01")):
        photo(root / split / "images" / f"{number}_{split}.tif", size=(70, 74))
        vessel_mask(root / split / "1st_manual" / f"{number}_manual1.gif", size=(70, 74))
        vessel_mask(root / split / "mask" / f"{number}_{split}_mask.gif", size=(70, 74))
    vessel_mask(root / "test" / "2nd_manual" / "01_manual2.gif", size=(70, 74))
    return root


def build_chase(root: Path) -> Path:
    for name in ("Image_01L", "Image_01R"):
        photo(root / f"{name}.jpg")
        vessel_mask(root / f"{name}_1stHO.png")
        vessel_mask(root / f"{name}_2ndHO.png")
    return root


def build_hrf(root: Path) -> Path:
    for name, suffix in (("01_h", ".jpg"), ("01_g", ".jpg"), ("01_dr", ".JPG")):
        photo(root / "images" / f"{name}{suffix}")
        vessel_mask(root / "manual1" / f"{name}.tif")
        vessel_mask(root / "mask" / f"{name}_mask.tif")
    return root


def build_rimone(root: Path) -> Path:
    """RIM-ONE DL as downloaded: crops in class folders, binary disc and cup masks beside."""
    images = root / "RIM-ONE_DL_images" / "partitioned_randomly"
    masks = root / "RIM-ONE_DL_reference_segmentations"
    for split, group, name in (("training_set", "glaucoma", "r1_Im069"), ("training_set", "normal", "r2_Im004"),
                               ("test_set", "normal", "r3_Im010")):
        photo(images / split / group / f"{name}.png")
        for kind, axes in (("Disc", DISC_AXES), ("Cup", CUP_AXES)):
            binary = np.zeros((H, W), np.uint8)
            cv2.ellipse(binary, DISC_CENTRE, axes, 0, 0, 360, 255, -1)
            (masks / group).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(masks / group / f"{name}-1-{kind}-T.png"), binary)
            (masks / group / f"{name}-1-{kind}-T.txt").write_text("1 2\n3 4\n")
    return root


def build_folder(root: Path) -> Path:
    for name in ("a.jpg", "b.png", "c.jpg"):
        photo(root / name)
    table(root / "labels.xlsx", [{"Image": "a.jpg", "Label": 1, "Fovea_X": 3.0, "Fovea_Y": 4.0},
                                 {"Image": "b", "Label": 0}])
    return root


BUILDERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "refuge2_split": (build_refuge2_split, "refuge2"),
    "refuge2_root": (build_refuge2_root, "refuge2"),
    "refuge": (build_refuge, "refuge"),
    "idrid": (build_idrid, "idrid"),
    "palm": (build_palm, "palm"),
    "adam": (build_adam, "palm"),
    "riga": (build_riga, "riga"),
    "drishti": (build_drishti, "drishti-gs1"),
    "rimone": (build_rimone, "rim-one-dl"),
    "drive": (build_drive, "drive"),
    "chase": (build_chase, "chase_db1"),
    "hrf": (build_hrf, "hrf"),
    "folder": (build_folder, "folder"),
}


def by_id(samples: list[Sample]) -> dict[str, Sample]:
    return {s.image_id: s for s in samples}


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(BUILDERS))
def test_detect_format_picks_the_layout(tmp_path: Path, layout: str) -> None:
    builder, expected = BUILDERS[layout]
    root = builder(tmp_path / layout)
    assert detect_format(root) == expected
    samples = read_dataset(root, format=expected)
    assert samples and all(s.image_path.is_file() for s in samples)


def test_formats_registry_names() -> None:
    assert set(FORMATS) == {"refuge", "refuge2", "idrid", "palm", "riga", "drishti-gs1", "rim-one-dl", "drive",
                            "chase_db1", "hrf", "folder"}


# --------------------------------------------------------------------------------------------
# Each layout read back
# --------------------------------------------------------------------------------------------


def test_refuge2_split_folder(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_refuge2_split(tmp_path / "synthetic")))
    assert sorted(samples) == ["S0001.jpg", "S0002.jpg", "S0003.jpg"]
    first = samples["S0001.jpg"]
    assert first.label == 1 and samples["S0002.jpg"].label == 0
    assert first.fovea == (10.5, 20.0)
    assert first.eye == "left" and samples["S0002.jpg"].eye == "right" and samples["S0003.jpg"].eye is None
    assert first.source == "refuge2" and first.split is None and first.mask_format == "refuge"
    assert first.disc_cup_mask_path.name == "S0001.png" and first.vessel_mask_path.parent.name == "Vessel_Masks"
    mask = load_disc_cup_mask(first)
    assert mask.shape == (H, W) and set(np.unique(mask)) == {0, 128, 255}
    assert mask[DISC_CENTRE[1], DISC_CENTRE[0]] == 0 and mask[0, 0] == 255
    vessels = load_vessel_mask(first)
    assert vessels.dtype == bool and vessels.shape == (H, W) and 0 < vessels.sum() < vessels.size


def test_refuge2_root_reads_three_splits(tmp_path: Path) -> None:
    samples = read_dataset(build_refuge2_root(tmp_path / "REFUGE2"))
    splits = {(s.split, s.extra.get("refuge1_split"), s.image_id) for s in samples}
    assert ("train", "train", "g0001.jpg") in splits and ("train", "validation", "V0001.jpg") in splits
    assert {s.split for s in samples} == {"train", "validation", "test"}
    assert len(samples) == 3 + 1 + 3 + 3
    train = by_id([s for s in samples if s.split == "train"])
    assert train["g0001.jpg"].label == 1 and train["n0001.jpg"].label == 0 and train["V0001.jpg"].label == 1
    assert train["n0002.jpg"].fovea == (52.0, 30.0)
    assert all(s.source == "refuge2" for s in samples)


def test_refuge_2018_download(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_refuge(tmp_path / "REFUGE")))
    assert {k: (s.split, s.label) for k, s in samples.items()} == {
        "g0001.jpg": ("train", 1), "n0001.jpg": ("train", 0), "n0002.jpg": ("train", 0),
        "V0001.jpg": ("validation", 0), "T0001.jpg": ("test", 1), "T0002.jpg": ("test", 0)}
    assert samples["T0002.jpg"].fovea == (42.0, 43.0) and samples["g0001.jpg"].fovea == (50.0, 30.0)
    assert samples["V0001.jpg"].disc_cup_mask_path.name == "V0001.bmp"
    assert load_disc_cup_mask(samples["V0001.jpg"]).shape == (96, 96)
    assert all(s.source == "refuge" for s in samples.values())


def test_idrid_disc_masks_and_centres(tmp_path: Path) -> None:
    samples = read_dataset(build_idrid(tmp_path / "IDRiD"))
    segmentation = {(s.split, s.image_id): s for s in samples if s.extra["part"] == "segmentation"}
    assert set(segmentation) == {("train", "IDRiD_01.jpg"), ("train", "IDRiD_02.jpg"), ("test", "IDRiD_55.jpg")}
    disc = segmentation[("train", "IDRiD_01.jpg")]
    assert disc.mask_format == "disc-only" and not has_cup_annotation(disc)
    mask = load_disc_cup_mask(disc)
    assert set(np.unique(mask)) == {128, 255} and mask[DISC_CENTRE[1], DISC_CENTRE[0]] == 128
    localisation = {(s.split, s.image_id): s for s in samples if s.extra["part"] == "localisation"}
    assert localisation[("train", "IDRiD_001.jpg")].fovea == (30.0, 40.0)
    assert localisation[("train", "IDRiD_001.jpg")].extra["disc_centre"] == (60.0, 35.0)
    assert localisation[("train", "IDRiD_002.jpg")].fovea == (31.0, 41.0)
    assert localisation[("test", "IDRiD_001.jpg")].fovea == (12.0, 13.0)  # same name, own split


def test_palm_labels_go_to_extra(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_palm(tmp_path / "PALM")))
    assert {k: s.extra.get("pm_label") for k, s in samples.items()} == {
        "H0001.jpg": 0, "N0001.jpg": 0, "P0001.jpg": 1, "V0001.jpg": 1}
    assert all(s.label is None and s.source == "palm" for s in samples.values())
    assert samples["N0001.jpg"].fovea is None and samples["P0001.jpg"].fovea == (35.0, 36.0)
    assert samples["V0001.jpg"].split == "validation" and samples["V0001.jpg"].disc_cup_mask_path is None
    mask = load_disc_cup_mask(samples["H0001.jpg"])
    assert set(np.unique(mask)) == {128, 255} and mask[DISC_CENTRE[1], DISC_CENTRE[0]] == 128


def test_adam(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_adam(tmp_path / "ADAM")))
    assert samples["A0001.jpg"].extra == {"amd_label": 1} and samples["N0001.jpg"].extra == {"amd_label": 0}
    assert samples["A0001.jpg"].source == "adam" and samples["A0001.jpg"].fovea == (5.0, 6.0)
    assert samples["N0001.jpg"].disc_cup_mask_path is None


def test_riga_outlines_become_a_majority_mask(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_riga(tmp_path / "RIGA")))
    assert set(samples) == {"MESSIDOR_image1prime.tif", "BinRushed2_image1prime.png"}
    sample = samples["MESSIDOR_image1prime.tif"]
    assert sample.mask_format == "riga-outlines" and len(sample.extra["rater_paths"]) == 3
    mask = load_disc_cup_mask(sample)
    truth_disc = np.zeros(mask.shape, np.uint8)
    cv2.ellipse(truth_disc, (48, 44), (24, 20), 0, 0, 360, 1, -1)
    truth_cup = np.zeros(mask.shape, np.uint8)
    cv2.ellipse(truth_cup, (48, 44), (11, 9), 0, 0, 360, 1, -1)
    for predicted, truth in ((mask < 255, truth_disc > 0), (mask == 0, truth_cup > 0)):
        dice = 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())
        assert dice > 0.9  # the third rater's large cup is outvoted


def test_riga_touching_outlines_still_give_a_cup() -> None:
    ink = np.zeros((88, 96), np.uint8)
    cv2.ellipse(ink, (48, 44), (24, 20), 0, 0, 360, 255, 2)
    cv2.ellipse(ink, (40, 44), (16, 12), 0, 0, 360, 255, 2)  # touches the disc line on the left
    regions = outlines_to_disc_cup(ink)
    assert regions is not None
    disc, cup = regions
    assert 0.2 < cup.sum() / disc.sum() < 0.6


def test_riga_ink_ignores_small_noise() -> None:
    image = np.full((88, 96, 3), 80, np.uint8)
    marked = image.copy()
    marked[10, 10] = 255  # a lone speck, as JPEG noise leaves
    assert ink_mask(image, marked).sum() == 0


def test_drishti_softmaps_at_least_two_of_four(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_drishti(tmp_path / "Drishti-GS1")))
    sample = samples["drishtiGS_002.png"]
    assert sample.split == "train" and sample.extra["expert_cdrs"] == (0.5, 0.55, 0.6, 0.52)
    mask = load_disc_cup_mask(sample)
    disc_2_of_4 = np.zeros(mask.shape, np.uint8)
    cv2.ellipse(disc_2_of_4, DISC_CENTRE, (DISC_AXES[0] + 2, DISC_AXES[1] + 2), 0, 0, 360, 1, -1)
    np.testing.assert_array_equal(mask < 255, disc_2_of_4 > 0)
    assert (mask == 0).sum() > 0 and has_cup_annotation(sample)


def test_rimone_crops_labels_masks_and_view(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_rimone(tmp_path / "RIM-ONE_DL")))
    assert {k: (v.label, v.split, v.view) for k, v in samples.items()} == {
        "r1_Im069.png": (1, "train", "disc"), "r2_Im004.png": (0, "train", "disc"), "r3_Im010.png": (0, "test", "disc")}
    sample = samples["r1_Im069.png"]
    assert sample.disc_cup_mask_path.name == "r1_Im069-1-Disc-T.png"
    mask = load_disc_cup_mask(sample)
    disc, cup = np.zeros(mask.shape, np.uint8), np.zeros(mask.shape, np.uint8)
    cv2.ellipse(disc, DISC_CENTRE, DISC_AXES, 0, 0, 360, 1, -1)
    cv2.ellipse(cup, DISC_CENTRE, CUP_AXES, 0, 0, 360, 1, -1)
    np.testing.assert_array_equal(mask < 255, disc > 0)
    np.testing.assert_array_equal(mask == 0, (cup > 0) & (disc > 0))
    assert has_cup_annotation(sample)


def test_rimone_missing_cup_mask_and_crop_outside_a_class_folder(tmp_path: Path) -> None:
    root = build_rimone(tmp_path / "RIM-ONE_DL")
    next(root.rglob("r2_Im004-1-Cup-T.png")).unlink()
    with pytest.raises(DataError, match=r"r2_Im004-1-Disc-T\.png: has no partner mask r2_Im004-1-Cup-T\.png for r2_Im004\.png"):
        read_dataset(root)
    root = build_rimone(tmp_path / "again" / "RIM-ONE_DL")
    photo(root / "RIM-ONE_DL_images" / "stray.png")
    with pytest.raises(DataError, match=r"stray\.png: is not inside a 'glaucoma' or 'normal' folder"):
        read_dataset(root)


def test_drive_reads_gif_masks_and_both_splits(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_drive(tmp_path / "DRIVE")))
    train, test = samples["21_training.tif"], samples["01_test.tif"]
    assert (train.split, test.split) == ("train", "test")
    assert train.vessel_mask_path.name == "21_manual1.gif"
    assert train.extra["fov_mask_path"].name == "21_training_mask.gif"
    assert test.extra["second_vessel_mask_path"].name == "01_manual2.gif"
    vessels = load_vessel_mask(train)
    assert vessels.shape == (74, 70) and vessels.sum() > 0


def test_chase_eye_from_name(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_chase(tmp_path / "CHASEDB1")))
    assert samples["Image_01L.jpg"].eye == "left" and samples["Image_01R.jpg"].eye == "right"
    assert samples["Image_01L.jpg"].vessel_mask_path.name == "Image_01L_1stHO.png"
    assert samples["Image_01L.jpg"].extra["second_vessel_mask_path"].name == "Image_01L_2ndHO.png"


def test_hrf_groups(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_hrf(tmp_path / "HRF")))
    assert {k: (s.label, s.extra["diagnosis"]) for k, s in samples.items()} == {
        "01_h.jpg": (0, "healthy"), "01_g.jpg": (1, "glaucoma"), "01_dr.JPG": (0, "diabetic retinopathy")}
    assert load_vessel_mask(samples["01_dr.JPG"]).any()


def test_plain_folder_with_spreadsheet(tmp_path: Path) -> None:
    samples = by_id(read_dataset(build_folder(tmp_path / "photos")))
    assert (samples["a.jpg"].label, samples["a.jpg"].fovea) == (1, (3.0, 4.0))
    assert (samples["b.png"].label, samples["b.png"].fovea) == (0, None)
    assert samples["c.jpg"].label is None and samples["c.jpg"].source == "folder"


# --------------------------------------------------------------------------------------------
# Errors name the file (and row) and what was expected
# --------------------------------------------------------------------------------------------


def test_missing_mask_file(tmp_path: Path) -> None:
    root = build_refuge2_split(tmp_path / "set")
    (root / "Disc_Masks" / "S0002.png").unlink()
    with pytest.raises(DataError, match=r"S0002\.png.*disc/cup mask for S0002\.jpg is missing"):
        read_dataset(root)


def test_missing_image_file_named_by_spreadsheet_row(tmp_path: Path) -> None:
    root = build_refuge2_split(tmp_path / "set")
    (root / "Images" / "S0003.jpg").unlink()
    (root / "Disc_Masks" / "S0003.png").unlink()
    (root / "Vessel_Masks" / "S0003.png").unlink()
    with pytest.raises(DataError, match=r"fovea\.csv, row 4: names image 'S0003\.jpg', which is not in"):
        read_dataset(root)


def test_mask_of_the_wrong_size(tmp_path: Path) -> None:
    root = build_refuge(tmp_path / "REFUGE")
    refuge_mask(root / "REFUGE-Test-GT" / "Disc_Cup_Masks" / "T0002.bmp", size=(W + 8, H))
    expected = r"T0002\.bmp: the disc/cup mask is 88x72 pixels but its image T0002\.jpg is 80x72"
    with pytest.raises(DataError, match=expected):
        read_dataset(root)


def test_unknown_mask_value_is_named_when_loaded(tmp_path: Path) -> None:
    root = build_refuge2_split(tmp_path / "set")
    refuge_mask(root / "Disc_Masks" / "S0001.png", values=(255, 100, 0))
    samples = by_id(read_dataset(root))  # values are only checked on load
    with pytest.raises(DataError, match=r"S0001\.png: holds values \{0, 100, 255\}"):
        load_disc_cup_mask(samples["S0001.jpg"])


def test_label_not_0_or_1(tmp_path: Path) -> None:
    root = build_refuge2_split(tmp_path / "set")
    table(root / "glaucoma.csv", [{"FileName": "S0001.jpg", "Glaucoma Risk": 1},
                                  {"FileName": "S0002.jpg", "Glaucoma Risk": 0.7}])
    expected = r"glaucoma\.csv, row 3: column 'Glaucoma Risk' holds '0\.7'; a label must be 0 or 1"
    with pytest.raises(DataError, match=expected):
        read_dataset(root)


def test_label_error_in_xlsx_names_the_row(tmp_path: Path) -> None:
    root = build_folder(tmp_path / "photos")
    table(root / "labels.xlsx", [{"Image": "a.jpg", "Label": 1}, {"Image": "b.png", "Label": "yes"}])
    with pytest.raises(DataError, match=r"labels\.xlsx, row 3: column 'Label' holds 'yes'"):
        read_dataset(root)


def test_missing_required_column_lists_columns_found(tmp_path: Path) -> None:
    root = build_refuge2_split(tmp_path / "set")
    table(root / "fovea.csv", [{"Picture": "S0001.jpg", "Fovea_X": 1, "Fovea_Y": 2}])
    expected = r"fovea\.csv: has no image-name column .*columns found: 'Picture', 'Fovea_X', 'Fovea_Y'"
    with pytest.raises(DataError, match=expected):
        read_dataset(root)


def test_table_without_label_or_fovea_columns(tmp_path: Path) -> None:
    root = build_folder(tmp_path / "photos")
    table(root / "notes.csv", [{"FileName": "a.jpg", "Comment": "blurry"}])
    expected = r"notes\.csv: has neither a label column .*columns found: 'FileName', 'Comment'"
    with pytest.raises(DataError, match=expected):
        read_dataset(root)


def test_unrecognisable_folder_lists_formats_tried(tmp_path: Path) -> None:
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError) as error:
        read_dataset(tmp_path / "empty")
    message = str(error.value)
    assert "empty" in message and "not a data set layout" in message
    for name in FORMATS:
        assert f"{name}: " in message


def test_unknown_format_name_and_missing_path(tmp_path: Path) -> None:
    build_folder(tmp_path / "photos")
    with pytest.raises(FunduskitError, match="unknown data set format 'refuge3'; known formats: refuge, refuge2"):
        read_dataset(tmp_path / "photos", format="refuge3")
    with pytest.raises(DataError, match="nowhere: does not exist"):
        read_dataset(tmp_path / "nowhere")


def test_riga_copy_without_outline(tmp_path: Path) -> None:
    root = build_riga(tmp_path / "RIGA")
    prime = root / "MESSIDOR" / "image1prime.tif"
    cv2.imwrite(str(root / "MESSIDOR" / "image1-2.tif"), cv2.imread(str(prime)))
    sample = by_id(read_dataset(root))["MESSIDOR_image1prime.tif"]
    expected = r"image1-2\.tif: holds no closed outline where it differs from image1prime\.tif"
    with pytest.raises(DataError, match=expected):
        load_disc_cup_mask(sample)


def test_drishti_missing_partner_softmap(tmp_path: Path) -> None:
    root = build_drishti(tmp_path / "Drishti-GS1")
    next(root.rglob("drishtiGS_004_cupsegSoftmap.png")).unlink()
    expected = r"drishtiGS_004_ODsegSoftmap\.png: has no partner soft map drishtiGS_004_cupsegSoftmap\.png"
    with pytest.raises(DataError, match=expected):
        read_dataset(root)


def test_vessel_mask_with_grey_levels(tmp_path: Path) -> None:
    root = build_chase(tmp_path / "CHASEDB1")
    cv2.imwrite(str(root / "Image_01L_1stHO.png"), np.tile(np.arange(W, dtype=np.uint8), (H, 1)))
    sample = by_id(read_dataset(root))["Image_01L.jpg"]
    with pytest.raises(DataError, match=r"Image_01L_1stHO\.png: holds values \{0, 1, 2,"):
        load_vessel_mask(sample)


def test_sample_without_annotation(tmp_path: Path) -> None:
    sample = by_id(read_dataset(build_folder(tmp_path / "photos")))["a.jpg"]
    with pytest.raises(DataError, match=r"a\.jpg: has no disc/cup annotation"):
        load_disc_cup_mask(sample)
    with pytest.raises(DataError, match=r"a\.jpg: has no vessel annotation"):
        load_vessel_mask(sample)


# --------------------------------------------------------------------------------------------
# The real copies beside the repository (skipped when absent)
# --------------------------------------------------------------------------------------------


def test_real_drishti_and_drive(shared_data: Path) -> None:
    drishti_root, drive_root = shared_data / "drishti-gs1", shared_data / "drive"
    if not (drishti_root.is_dir() and drive_root.is_dir()):
        pytest.skip("drishti-gs1 or drive is absent from shared/data")
    drishti = read_dataset(drishti_root)
    assert detect_format(drishti_root) == "drishti-gs1" and len(drishti) == 50
    mask = load_disc_cup_mask(drishti[0])
    assert set(np.unique(mask)) == {0, 128, 255}
    width, height = Image.open(drishti[0].image_path).size
    assert mask.shape == (height, width)
    drive = read_dataset(drive_root)
    assert detect_format(drive_root) == "drive" and len(drive) == 20
    assert all(s.split == "train" and s.vessel_mask_path is not None for s in drive)
    vessels = load_vessel_mask(drive[0])
    assert vessels.shape == (584, 565) and 0.03 < vessels.mean() < 0.2


def test_real_rimone(shared_data: Path) -> None:
    root = shared_data / "rim-one-dl"
    if not root.is_dir():
        pytest.skip("rim-one-dl is absent from shared/data")
    samples = read_dataset(root)
    assert detect_format(root) == "rim-one-dl" and len(samples) == 339
    assert sum(s.label for s in samples) == 120 and all(s.view == "disc" and s.split == "train" for s in samples)
    mask = load_disc_cup_mask(samples[0])
    assert set(np.unique(mask)) == {0, 128, 255}


def test_several_data_sets_train_together_and_names_must_differ(tmp_path: Path) -> None:
    from funduskit.training.train import read_training_data

    drive, chase = build_drive(tmp_path / "DRIVE"), build_chase(tmp_path / "CHASEDB1")
    together = read_training_data([drive, chase])
    assert len(together) == len(read_dataset(drive)) + len(read_dataset(chase))
    assert {s.source for s in together} == {"drive", "chase_db1"}
    copy = tmp_path / "copy"
    shutil.copytree(chase, copy)
    with pytest.raises(DataError, match=r"Image_01L\.jpg: has the file name of a photograph of .*CHASEDB1"):
        read_training_data([chase, copy])
