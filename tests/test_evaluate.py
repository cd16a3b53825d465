"""The evaluator end to end, on a tiny ground-truth folder in the REFUGE2 split layout."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from funduskit.core.errors import DataError
from funduskit.data.datasets import read_dataset
from funduskit.data.sample import Sample
from funduskit.scoring.evaluate import (
    PER_IMAGE_COLUMNS,
    evaluate,
    save_evaluation,
    summary_table,
)
from funduskit.scoring.submission import (
    CLASSIFICATION_FILE,
    FOVEA_FILE,
    SEGMENTATION_DIR,
    Submission,
    submission_from_samples,
    write_submission,
)

# (height, width) per image: two "cameras"; labels 1, 1, 0, 0
SIZES = {"S0001": (72, 80), "S0002": (72, 80), "S0003": (64, 64), "S0004": (64, 64)}
LABELS = {"S0001": 1, "S0002": 1, "S0003": 0, "S0004": 0}
FOVEAS = {"S0001": (50.0, 30.0), "S0002": (52.5, 31.0), "S0003": (45.0, 28.0), "S0004": (44.0, 33.5)}


def refuge_mask(shape: tuple[int, int], disc: tuple[slice, slice], cup: tuple[slice, slice]) -> np.ndarray:
    mask = np.full(shape, 255, np.uint8)
    mask[disc] = 128
    mask[cup] = 0
    return mask


# Reference: disc rows 10-29 x columns 20-39 (20 x 20 = 400 px), cup rows 15-24 x columns 25-34 (100 px).
REF_DISC, REF_CUP = (slice(10, 30), slice(20, 40)), (slice(15, 25), slice(25, 35))
# Perturbed: disc moved 5 columns right (overlap 20 x 15 = 300), cup eroded by 1 px (8 x 8 = 64).
PERTURBED_DISC, PERTURBED_CUP = (slice(10, 30), slice(25, 45)), (slice(16, 24), slice(26, 34))


def write_ground_truth(root: Path, labels: dict[str, int] = LABELS) -> Path:
    rng = np.random.default_rng(0)
    (root / "Images").mkdir(parents=True)
    (root / "Disc_Masks").mkdir()
    for stem, shape in SIZES.items():
        cv2.imwrite(str(root / "Images" / f"{stem}.jpg"), rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "Disc_Masks" / f"{stem}.png"), refuge_mask(shape, REF_DISC, REF_CUP))
    (root / "glaucoma.csv").write_text(
        "FileName,Glaucoma Risk\n" + "".join(f"{stem}.jpg,{label}\n" for stem, label in labels.items())
    )
    (root / "fovea.csv").write_text(
        "ImageName,Fovea_X,Fovea_Y\n" + "".join(f"{stem}.jpg,{x},{y}\n" for stem, (x, y) in FOVEAS.items())
    )
    return root


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ground_truth(tmp_path_factory.mktemp("gt") / "Validation")


@pytest.fixture(scope="module")
def perfect(ground_truth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_submission(submission_from_samples(read_dataset(ground_truth)), tmp_path_factory.mktemp("perfect"))


def perturbed_submission() -> Submission:
    return Submission(
        # labels 1, 1, 0, 0; pairs ranked right: .9>.4, .9>.1, .3>.1; wrong: .3<.4 -> AUROC 3/4
        glaucoma_risk={"S0001.jpg": 0.9, "S0002.jpg": 0.3, "S0003.jpg": 0.4, "S0004.jpg": 0.1},
        segmentation={stem: refuge_mask(shape, PERTURBED_DISC, PERTURBED_CUP) for stem, shape in SIZES.items()},
        fovea={f"{stem}.jpg": (x + 3, y + 4) for stem, (x, y) in FOVEAS.items()},
    )


def copy_submission(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_a_perfect_submission_scores_perfectly(perfect: Path, ground_truth: Path) -> None:
    result = evaluate(perfect, ground_truth, progress=False)
    assert result.tasks == ("segmentation", "classification", "fovea")
    assert result.metrics == {
        "mean_disc_dice": 1.0,
        "mean_cup_dice": 1.0,
        "mean_vcdr_error": 0.0,
        "auroc": 1.0,
        "sensitivity_at_specificity": 1.0,
        "mean_fovea_distance": 0.0,
    }
    assert result.counts == {"segmentation": 4, "cup": 4, "classification": 4, "glaucoma": 2, "fovea": 4}
    assert [image.image for image in result.images] == [f"{stem}.jpg" for stem in SIZES]
    assert all(image.vcdr_ref == pytest.approx(0.5) for image in result.images)


def test_a_perturbed_submission_gives_the_numbers_of_the_definitions(ground_truth: Path, tmp_path: Path) -> None:
    write_submission(perturbed_submission(), tmp_path / "pred")
    result = evaluate(tmp_path / "pred", ground_truth, "refuge2", progress=False)
    assert result.metrics["mean_disc_dice"] == pytest.approx(2 * 300 / (400 + 400))
    assert result.metrics["mean_cup_dice"] == pytest.approx(2 * 64 / (100 + 64))
    assert result.metrics["mean_vcdr_error"] == pytest.approx(10 / 20 - 8 / 20)
    assert result.metrics["auroc"] == pytest.approx(0.75)
    # negatives .4, .1: FPR .15 lies on the flat part from (0, .5) to (.5, .5)
    assert result.metrics["sensitivity_at_specificity"] == pytest.approx(0.5)
    assert result.metrics["mean_fovea_distance"] == pytest.approx(5.0)

    summary_path, per_image_path = save_evaluation(result, tmp_path / "out" / "summary.json")
    assert per_image_path == tmp_path / "out" / "per_image.csv"
    summary = json.loads(summary_path.read_text())
    assert summary["metrics"]["auroc"] == pytest.approx(0.75)
    assert summary["images"] == 4 and summary["reference_specificity"] == 0.85
    with per_image_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == PER_IMAGE_COLUMNS
    first = rows[0]
    assert first["image"] == "S0001.jpg"
    assert float(first["disc_dice"]) == pytest.approx(0.75)
    assert float(first["vcdr_pred"]) == pytest.approx(0.4)
    assert float(first["vcdr_error"]) == pytest.approx(0.1)
    assert (float(first["fovea_x_pred"]), float(first["fovea_y_pred"])) == (53.0, 34.0)
    assert float(first["fovea_distance"]) == pytest.approx(5.0)
    assert (first["glaucoma_risk"], first["glaucoma_label"]) == ("0.9", "1")


def test_only_tasks_in_both_are_scored(ground_truth: Path, tmp_path: Path) -> None:
    write_submission(Submission(fovea={f"{stem}.jpg": xy for stem, xy in FOVEAS.items()}), tmp_path)
    result = evaluate(tmp_path, ground_truth, progress=False)
    assert result.tasks == ("fovea",)
    assert result.metrics == {"mean_fovea_distance": 0.0}
    assert any("segmentation not scored" in note for note in result.notes)
    assert any("classification not scored" in note for note in result.notes)


def test_auroc_is_null_when_the_labels_hold_one_class(tmp_path: Path) -> None:
    gt = write_ground_truth(tmp_path / "gt", labels=dict.fromkeys(SIZES, 0))
    write_submission(Submission(glaucoma_risk={stem: 0.5 for stem in SIZES}), tmp_path / "pred")
    result = evaluate(tmp_path / "pred", gt, progress=False)
    assert result.metrics == {"auroc": None, "sensitivity_at_specificity": None}
    assert any("one class" in note for note in result.notes)
    summary_path, _ = save_evaluation(result, tmp_path / "summary.json")
    assert json.loads(summary_path.read_text())["metrics"]["auroc"] is None


def test_disc_only_references_score_the_disc_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PALM / ADAM style references: 0 = disc on 255, no cup; two of the four images
    samples = []
    for stem in ("S0001", "S0003"):
        shape = SIZES[stem]
        cv2.imwrite(str(tmp_path / f"{stem}.jpg"), np.full((*shape, 3), 80, np.uint8))
        disc = np.full(shape, 255, np.uint8)
        disc[REF_DISC] = 0
        cv2.imwrite(str(tmp_path / f"{stem}_disc.png"), disc)
        samples.append(
            Sample(f"{stem}.jpg", tmp_path / f"{stem}.jpg", disc_cup_mask_path=tmp_path / f"{stem}_disc.png",
                   mask_format="disc-only-black", source="palm")
        )
    monkeypatch.setattr("funduskit.data.datasets.read_dataset", lambda path, format=None: samples)
    submission = perturbed_submission()
    write_submission(Submission(segmentation={s: submission.segmentation[s] for s in ("S0001", "S0003")}), tmp_path / "p")
    result = evaluate(tmp_path / "p", tmp_path, progress=False)
    assert result.metrics == {"mean_disc_dice": pytest.approx(0.75), "mean_cup_dice": None, "mean_vcdr_error": None}
    assert result.counts == {"segmentation": 2, "cup": 0}
    assert any("disc-only" in note for note in result.notes)
    assert result.images[0].cup_dice is None and result.images[0].vcdr_error is None


def test_missing_and_extra_images_are_listed_in_one_error(perfect: Path, ground_truth: Path, tmp_path: Path) -> None:
    pred = copy_submission(perfect, tmp_path / "pred")
    (pred / SEGMENTATION_DIR / "S0002.png").unlink()
    shutil.copy(pred / SEGMENTATION_DIR / "S0001.png", pred / SEGMENTATION_DIR / "X0099.png")
    rows = (pred / FOVEA_FILE).read_text().splitlines()
    (pred / FOVEA_FILE).write_text("\n".join(row for row in rows if not row.startswith("S0003")) + "\n")
    with (pred / CLASSIFICATION_FILE).open("a") as handle:
        handle.write("Y0042.jpg,0.5\n")
    with pytest.raises(DataError) as caught:
        evaluate(pred, ground_truth, progress=False)
    message = str(caught.value)
    assert str(pred) in message and "4 problems" in message
    assert "segmentation/S0002.png (for S0002.jpg) is missing" in message
    assert f"{FOVEA_FILE} has no row for S0003.jpg" in message
    assert "segmentation/X0099.png names no ground-truth image" in message
    assert f"{CLASSIFICATION_FILE} row Y0042.jpg names no ground-truth image" in message


def test_the_list_of_offending_files_is_cut_after_20(perfect: Path, ground_truth: Path, tmp_path: Path) -> None:
    pred = copy_submission(perfect, tmp_path / "pred")
    for number in range(25):
        shutil.copy(pred / SEGMENTATION_DIR / "S0001.png", pred / SEGMENTATION_DIR / f"X{number:04d}.png")
    cut = r"25 problems: .*X0019\.png names no ground-truth image; \.\.\. and 5 more"
    with pytest.raises(DataError, match=cut) as caught:
        evaluate(pred, ground_truth, progress=False)
    assert "X0020" not in str(caught.value)


def test_wrong_size_and_wrong_values_are_listed_in_one_error(perfect: Path, ground_truth: Path, tmp_path: Path) -> None:
    pred = copy_submission(perfect, tmp_path / "pred")
    cv2.imwrite(str(pred / SEGMENTATION_DIR / "S0001.png"), refuge_mask((64, 64), REF_DISC, REF_CUP))  # image is 80x72
    odd = refuge_mask(SIZES["S0003"], REF_DISC, REF_CUP)
    odd[0, 0] = 7
    odd[0, 1] = 1
    cv2.imwrite(str(pred / SEGMENTATION_DIR / "S0003.png"), odd)
    with pytest.raises(DataError) as caught:
        evaluate(pred, ground_truth, progress=False)
    message = str(caught.value)
    assert "2 masks cannot be scored" in message
    assert "segmentation/S0001.png is 64x64, expected 80x72 (the image size)" in message
    assert "segmentation/S0003.png has values 1, 7" in message


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "funduskit", "evaluate", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def test_cli_prints_the_table_and_writes_the_summary(ground_truth: Path, tmp_path: Path) -> None:
    write_submission(perturbed_submission(), tmp_path / "pred")
    done = run_cli("--pred", tmp_path / "pred", "--gt", ground_truth, "--out", tmp_path / "out" / "summary.json")
    assert done.returncode == 0, done.stderr
    for text in ("AUROC", "Disc Dice", "0.7500", "Fovea distance", "5.0000", "Sensitivity at specificity 0.85"):
        assert text in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["mean_fovea_distance"] == pytest.approx(5.0)
    assert summary["ground_truth_format"] == "refuge2"
    assert (tmp_path / "out" / "per_image.csv").is_file()


def test_cli_defaults_to_pred_summary_and_reports_errors(perfect: Path, ground_truth: Path, tmp_path: Path) -> None:
    pred = copy_submission(perfect, tmp_path / "pred")
    done = run_cli("--pred", pred, "--gt", ground_truth, "--format", "refuge2")
    assert done.returncode == 0, done.stderr
    assert json.loads((pred / "summary.json").read_text())["metrics"]["mean_cup_dice"] == 1.0
    assert (pred / "per_image.csv").is_file()

    (pred / SEGMENTATION_DIR / "S0004.png").unlink()
    done = run_cli("--pred", pred, "--gt", ground_truth)
    assert done.returncode == 2
    assert "funduskit evaluate: error:" in done.stderr
    assert "segmentation/S0004.png (for S0004.jpg) is missing" in done.stderr


def test_summary_table_lists_the_scored_metrics(perfect: Path, ground_truth: Path) -> None:
    table = summary_table(evaluate(perfect, ground_truth, progress=False))
    assert table.row_count == 6
