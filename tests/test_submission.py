"""The REFUGE2 submission format: writing, reading, and what is refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.sample import Sample
from funduskit.scoring.submission import (
    CLASSIFICATION_FILE,
    FOVEA_FILE,
    SEGMENTATION_DIR,
    Submission,
    atomic_write_bytes,
    image_stem,
    load_submission_mask,
    read_submission,
    submission_from_samples,
    write_submission,
)


def refuge_mask(height: int, width: int, offset: int = 0) -> np.ndarray:
    mask = np.full((height, width), 255, np.uint8)
    mask[4 + offset : 16 + offset, 5:17] = 128
    mask[7 + offset : 12 + offset, 8:13] = 0
    return mask


def full_submission() -> Submission:
    return Submission(
        glaucoma_risk={"V0001.jpg": 0.125, "V0002.jpg": 0.875},
        segmentation={"V0001.jpg": refuge_mask(64, 70), "V0002.jpg": refuge_mask(72, 66, offset=2)},
        fovea={"V0001.jpg": (12.5, 10.0), "V0002.jpg": (3.0, 4.25)},
    )


@pytest.mark.parametrize(
    ("image_id", "stem"),
    [
        ("V0001.jpg", "V0001"),
        ("V0001", "V0001"),
        ("g0001.JPG", "g0001"),
        ("Images/T0400.png", "T0400"),
        ("case.12", "case.12"),
    ],
)
def test_image_stem(image_id: str, stem: str) -> None:
    assert image_stem(image_id) == stem


def test_submission_keys_by_stem_and_remembers_file_names() -> None:
    submission = full_submission()
    assert set(submission.glaucoma_risk) == {"V0001", "V0002"}
    assert submission.tasks == ("segmentation", "classification", "fovea")
    assert submission.file_name("V0001") == "V0001.jpg"
    assert Submission(fovea={"A7": (1.0, 2.0)}).file_name("A7") == "A7.jpg"
    assert Submission(fovea={"A7": (1.0, 2.0)}).tasks == ("fovea",)
    with pytest.raises(FunduskitError, match="two entries for image 'V0001'"):
        Submission(glaucoma_risk={"V0001.jpg": 0.1, "V0001.png": 0.2})


@pytest.mark.parametrize("mask_suffix", [".png", ".bmp"])
def test_write_then_read_round_trip(tmp_path: Path, mask_suffix: str) -> None:
    written = full_submission()
    write_submission(written, tmp_path / "sub", mask_suffix=mask_suffix)

    assert (tmp_path / "sub" / CLASSIFICATION_FILE).read_text().splitlines() == [
        "FileName,Glaucoma Risk",
        "V0001.jpg,0.125",
        "V0002.jpg,0.875",
    ]
    assert (tmp_path / "sub" / FOVEA_FILE).read_text().splitlines()[0] == "ImageName,Fovea_X,Fovea_Y"
    assert sorted(p.name for p in (tmp_path / "sub" / SEGMENTATION_DIR).iterdir()) == [
        f"V0001{mask_suffix}",
        f"V0002{mask_suffix}",
    ]
    assert not list((tmp_path / "sub").rglob("*.tmp"))

    read = read_submission(tmp_path / "sub")
    assert read.glaucoma_risk == written.glaucoma_risk
    assert read.fovea == written.fovea
    assert read.file_names == written.file_names
    assert set(read.segmentation) == set(written.segmentation)
    for stem, mask in written.segmentation.items():
        assert isinstance(read.segmentation[stem], Path)  # read lazily
        loaded = load_submission_mask(read.segmentation[stem])
        assert loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded, mask)


def test_a_submission_may_carry_only_some_tasks(tmp_path: Path) -> None:
    write_submission(Submission(fovea={"S1.png": (5.0, 6.0)}), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOVEA_FILE]
    read = read_submission(tmp_path)
    assert read.tasks == ("fovea",)
    assert read.file_name("S1") == "S1.png"
    assert read.glaucoma_risk == {} and read.segmentation == {}


def test_reading_lists_every_unparseable_row(tmp_path: Path) -> None:
    (tmp_path / CLASSIFICATION_FILE).write_text(
        "FileName,Glaucoma Risk\n"
        "V0001.jpg,0.5\n"
        "V0002.jpg,high\n"  # row 3
        "V0003.jpg\n"  # row 4
        "\n"  # blank line: skipped
        "V0004.jpg,1.5\n"  # row 6
        "V0001.jpg,0.2\n"  # row 7: duplicate
        "V0005.jpg,nan\n"  # row 8
    )
    with pytest.raises(DataError) as caught:
        read_submission(tmp_path)
    message = str(caught.value)
    assert CLASSIFICATION_FILE in message
    assert "5 rows cannot be read" in message
    for expected in (
        "row 3: Glaucoma Risk 'high' is not a number",
        "row 4: 1 columns, expected 2",
        "row 6: Glaucoma Risk '1.5' is outside [0, 1]",
        "row 7: V0001.jpg appears a second time",
        "row 8: Glaucoma Risk 'nan' is not a finite number",
    ):
        assert expected in message
    assert "row 2" not in message


def test_reading_refuses_a_wrong_header(tmp_path: Path) -> None:
    (tmp_path / FOVEA_FILE).write_text("name,x,y\nV0001.jpg,1,2\n")
    with pytest.raises(DataError, match=r"row 1: header is 'name,x,y', expected 'ImageName,Fovea_X,Fovea_Y'"):
        read_submission(tmp_path)


def test_reading_accepts_excel_csv_quirks(tmp_path: Path) -> None:
    # a byte-order mark, CRLF line ends, spaces around cells, header case
    (tmp_path / FOVEA_FILE).write_bytes(b"\xef\xbb\xbfimagename, fovea_x ,Fovea_Y\r\nV0001.jpg, 10.5 ,20\r\n")
    assert read_submission(tmp_path).fovea == {"V0001": (10.5, 20.0)}


def test_reading_refuses_an_empty_folder_and_two_masks_for_one_image(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no submission files"):
        read_submission(tmp_path)
    with pytest.raises(DataError, match="not found"):
        read_submission(tmp_path / "absent")
    segmentation = tmp_path / SEGMENTATION_DIR
    segmentation.mkdir()
    for name in ("V0001.png", "V0001.bmp"):
        cv2.imwrite(str(segmentation / name), refuge_mask(64, 70))
    (segmentation / ".DS_Store").write_bytes(b"junk")
    with pytest.raises(DataError, match="two masks for one image: V0001.bmp and V0001.png"):
        read_submission(tmp_path)


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        (np.full((8, 8), 7, np.uint8), "values 7"),
        (np.zeros((8, 8, 3), np.uint8), "single-channel"),
        (np.zeros((8, 8), np.int32), "uint8"),
    ],
)
def test_writing_refuses_masks_that_are_not_refuge_masks(tmp_path: Path, mask: np.ndarray, problem: str) -> None:
    with pytest.raises(FunduskitError, match=problem):
        write_submission(Submission(segmentation={"V0001": mask}), tmp_path)
    assert not (tmp_path / SEGMENTATION_DIR / "V0001.png").exists()


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "file.csv"
    target.write_text("old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file.csv"]


def test_submission_from_samples_is_the_ground_truth(tmp_path: Path) -> None:
    mask_path = tmp_path / "S0001.png"
    cv2.imwrite(str(mask_path), refuge_mask(64, 70))
    cv2.imwrite(str(tmp_path / "S0001.jpg"), np.full((64, 70, 3), 90, np.uint8))
    samples = [
        Sample("S0001.jpg", tmp_path / "S0001.jpg", disc_cup_mask_path=mask_path, fovea=(10.0, 12.0), label=1),
        Sample("S0002.jpg", tmp_path / "S0002.jpg", label=0),  # no mask, no fovea
    ]
    submission = submission_from_samples(samples)
    assert submission.glaucoma_risk == {"S0001": 1.0, "S0002": 0.0}
    assert submission.fovea == {"S0001": (10.0, 12.0)}
    assert set(submission.segmentation) == {"S0001"}
    np.testing.assert_array_equal(submission.segmentation["S0001"], refuge_mask(64, 70))
    assert submission.file_name("S0002") == "S0002.jpg"
