"""``funduskit predict`` and ``funduskit tune``: model discovery, the predictor's geometry and
flips (with hand-made networks), and the real command end to end on tiny trained-format runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from predict_helpers import make_run, tiny_config
from torch import nn

from funduskit.cli import main
from funduskit.core.errors import DataError, FunduskitError
from funduskit.inference.model_store import (
    MANIFEST,
    RunInfo,
    Thresholds,
    find_runs,
    read_thresholds,
    require_tasks,
)
from funduskit.inference.predictor import Member, Predictor, prepare_inputs
from funduskit.runtime.device import Runtime
from funduskit.scoring.metrics import dice

CPU_FP32 = Runtime(device=torch.device("cpu"), precision="fp32", channels_last=True, threads=1)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny networks for disc, cup, fovea and glaucoma (two preprocessings), one vessel net;
    nested one level down to exercise the folder search."""
    root = tmp_path_factory.mktemp("models")
    make_run(root / "vessel", "vessel", "fold0", 0)
    for fold in range(2):
        make_run(root / "disc", "disc", f"fold{fold}", 1 + fold, disc_bias=4.0)
        make_run(root / "cup", "cup", f"fold{fold}", 3 + fold)
        make_run(root / "fovea", "fovea", f"fold{fold}", 5 + fold)
    make_run(root, "glaucoma", "glaucoma-normalize", 7)
    make_run(root, "glaucoma", "glaucoma-zlm", 8, **{"data.preprocessing": "zero_local_mean"})
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic REFUGE2 split folder of three small photographs (two camera sizes)."""
    from funduskit.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("data") / "validation"
    generate_dataset(root, 3, 0, scale=0.1)
    return root


@pytest.fixture(scope="module")
def corrupt_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # a JPEG header, then garbage
    return path


@pytest.fixture(scope="module")
def first_run(models_dir: Path, dataset: Path, corrupt_photo: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real command in a subprocess: the data set's photographs and a corrupt file."""
    out = tmp_path_factory.mktemp("prediction")
    command = [sys.executable, "-m", "funduskit", "predict", str(dataset / "Images"), str(corrupt_photo),
               "--models", str(models_dir), "--out", str(out), "--tta", "--save-probabilities",
               "--batch-size", "2", "--device", "cpu", "--quiet",
               "--quality", "off"]  # random tiny networks: graded, but every answer written
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
    assert completed.returncode == 0, completed.stderr
    return out, command, completed


# --------------------------------------------------------------------------------------------
# Finding the models
# --------------------------------------------------------------------------------------------


def test_find_runs_groups_nested_run_directories_by_task(models_dir: Path) -> None:
    runs = find_runs(models_dir)
    assert {task: len(items) for task, items in runs.items()} == {"vessel": 1, "disc": 2, "cup": 2, "fovea": 2,
                                                                   "glaucoma": 2}
    assert [run.run_dir.name for run in runs["disc"]] == ["fold0", "fold1"]
    assert all(run.checkpoint.name == "best.pt" for items in runs.values() for run in items)
    require_tasks(runs, models_dir)  # every task present: no error


def test_manifest_names_the_runs_and_is_checked(models_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / MANIFEST
    manifest.write_text(
        f"vessel: {models_dir / 'vessel/fold0'}\n"
        f"disc: [{models_dir / 'disc/fold1'}]\n"
        f"glaucoma: [{models_dir / 'glaucoma-zlm'}, {models_dir / 'glaucoma-normalize'}]\n"
    )
    runs = find_runs(tmp_path)
    assert {task: [r.run_dir.name for r in items] for task, items in runs.items()} == {
        "vessel": ["fold0"], "disc": ["fold1"], "glaucoma": ["glaucoma-normalize", "glaucoma-zlm"]}
    with pytest.raises(FunduskitError, match=r"cup, fovea"):
        require_tasks(runs, tmp_path)
    manifest.write_text(f"cup: {models_dir / 'disc/fold0'}\n")
    with pytest.raises(DataError, match="for task 'disc'"):
        find_runs(tmp_path)


def test_predict_names_the_missing_task(models_dir: Path, dataset: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    partial = tmp_path / "models"
    partial.mkdir()
    for name in ("vessel", "disc", "fovea"):
        (partial / name).symlink_to(models_dir / name)
    status = main(["predict", str(dataset / "Images"), "--models", str(partial), "--out", str(tmp_path / "out"),
                   "--no-starter"])
    assert status == 2
    error = capsys.readouterr().err
    assert "task(s) cup (" in error and "funduskit train cup" in error  # glaucoma and fovea are optional


def test_thresholds_default_to_one_half_and_are_validated(tmp_path: Path) -> None:
    assert read_thresholds(tmp_path) == Thresholds(0.5, 0.5)
    (tmp_path / "thresholds.json").write_text('{"disc": 0.4, "cup": 0.65, "images": 3}')
    assert read_thresholds(tmp_path) == Thresholds(0.4, 0.65)
    (tmp_path / "thresholds.json").write_text('{"disc": 1.5, "cup": 0.5}')
    with pytest.raises(DataError, match="outside"):
        read_thresholds(tmp_path)


# --------------------------------------------------------------------------------------------
# The predictor with hand-made networks: geometry back to the original, flips, ensembles
# --------------------------------------------------------------------------------------------


class BrightRegion(nn.Module):
    """'Segments' where the standardised red channel is over one standard deviation above its mean:
    (B, C, S, S) -> (B, 1, S, S)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * (x[:, :1] - 1)


class LeftHalf(nn.Module):
    """Foreground on the left half of its input, whatever it is: (B, C, S, S) -> (B, 1, S, S)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full_like(x[:, :1], -20.0)
        logits[..., : x.shape[-1] // 2] = 20.0
        return logits


class BrightestCell(nn.Module):
    """Fovea maps: the brightest 8x8 cell is the most confident, offsets 0.5 (the cell's centre)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        confidence = 10 * nn.functional.avg_pool2d(x[:, :1], 8)  # standardised red channel
        return torch.cat([confidence, torch.zeros_like(confidence), torch.zeros_like(confidence)], dim=1)


class FirstCell(nn.Module):
    """Fovea maps always pointing at the centre of the top-left cell."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.zeros(x.shape[0], 3, x.shape[-2] // 8, x.shape[-1] // 8)
        maps[:, 0] = -10.0
        maps[:, 0, 0, 0] = 10.0
        return maps


class Constant(nn.Module):
    """A classifier giving the same logit for every photograph: (B, 3, S, S) -> (B,)."""

    def __init__(self, logit: float):
        super().__init__()
        self.logit = logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), self.logit)


def member(task: str, network: nn.Module, size: int = 64, preprocessing: str | None = None,
           **changes: object) -> Member:
    if preprocessing:
        changes["data.preprocessing"] = preprocessing
    config = tiny_config(task, size, **changes)
    return Member(RunInfo(run_dir=Path(task), config=config, checkpoint=Path(task) / "best.pt"), network.eval())


def photo_with_bright_disc(height: int = 96, width: int = 160, centre: tuple[int, int] = (120, 40),
                           radius: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A dark non-square photograph with one bright disc; returns (image, disc bool mask)."""
    image = np.full((height, width, 3), 30, dtype=np.uint8)
    cv2.circle(image, centre, radius, (250, 250, 250), -1)
    return image, image[..., 0] > 128


def predictor(disc: list[Member], fovea: list[Member], *, tta: bool = False,
              thresholds: Thresholds = Thresholds()) -> Predictor:
    return Predictor(
        {"vessel": [member("vessel", LeftHalf())], "disc": disc, "cup": [member("cup", LeftHalf())],
         "fovea": fovea, "glaucoma": [member("glaucoma", Constant(0.0)),
                                      member("glaucoma", Constant(float(np.log(3))), preprocessing="zero_local_mean")]},
        CPU_FP32, thresholds, tta=tta)


@pytest.mark.parametrize("tta", [False, True])
def test_predictions_come_back_at_the_original_size_and_place(tta: bool) -> None:
    image, truth = photo_with_bright_disc()
    [prediction] = predictor([member("disc", BrightRegion()), member("disc", BrightRegion(), size=96)],
                             [member("fovea", BrightestCell())], tta=tta).predict([image])
    assert prediction.mask.shape == (96, 160) and prediction.mask.dtype == np.uint8
    assert prediction.disc_probability.shape == prediction.vessels.shape == (96, 160)
    assert dice(prediction.mask < 255, truth) > 0.85
    # The fovea is the centre of the 8x8 network cell (20 original pixels) holding the bright disc.
    assert np.hypot(prediction.fovea[0] - 120, prediction.fovea[1] - 40) < 15
    assert prediction.glaucoma_probability == pytest.approx(0.625, abs=1e-6)  # mean of 0.5 and 0.75
    assert prediction.glaucoma_spread == pytest.approx(0.125, abs=1e-6)
    assert prediction.member_probabilities == pytest.approx([0.5, 0.75], abs=1e-6)


def test_a_glaucoma_combiner_turns_the_classifiers_and_the_vcdr_into_the_probability() -> None:
    from funduskit.inference.glaucoma_combiner import GlaucomaCombiner
    from funduskit.scoring.metrics import vertical_cdr

    image, _ = photo_with_bright_disc()
    combiner = GlaucomaCombiner(weights=(0.0, 1.0), intercept=0.0, means=(0.0, 0.5), scales=(1.0, 0.1),
                                images=10, positives=5)
    [prediction] = predictor([member("disc", BrightRegion())], [member("fovea", BrightestCell())],
                             thresholds=Thresholds(glaucoma=combiner)).predict([image])
    vcdr = vertical_cdr(prediction.mask)  # 0 here: the cup network's left half misses the disc
    assert prediction.classifier_probability == pytest.approx(0.625, abs=1e-6)  # the classifiers' mean
    assert prediction.glaucoma_probability == pytest.approx(1 / (1 + np.exp(-(vcdr - 0.5) / 0.1)), abs=1e-6)


def test_flipped_outputs_are_flipped_back() -> None:
    image, _ = photo_with_bright_disc()
    # Networks that always answer "left": the flipped pass, flipped back, answers "right".
    plain = predictor([member("disc", LeftHalf())], [member("fovea", FirstCell())],
                      thresholds=Thresholds(disc=0.4)).predict([image])[0]
    flipped = predictor([member("disc", LeftHalf())], [member("fovea", FirstCell())], tta=True,
                        thresholds=Thresholds(disc=0.4)).predict([image])[0]
    assert (plain.mask[:, :80] < 255).all() and (plain.mask[:, 80:] == 255).all()
    assert (flipped.mask < 255).all()  # left and right halves both at probability one half
    # First cell of a 64 input: network (4, 4) -> original (10, -22); its mirror is (150, -22).
    assert plain.fovea == pytest.approx((10.0, -22.0), abs=1e-6)
    assert flipped.fovea == pytest.approx((80.0, -22.0), abs=1e-6)
    assert flipped.fovea_spread == pytest.approx(70.0, abs=1e-6)


def test_inputs_prepared_ahead_are_the_ones_used() -> None:
    image, _ = photo_with_bright_disc()
    model = predictor([member("disc", BrightRegion())], [member("fovea", BrightestCell())])
    assert model.input_specs == {("standardize", 64), ("normalize", 64), ("zero_local_mean", 64)}
    prepared = model.prepare([image])
    assert prepared[("standardize", 64)].shape == (1, 64, 64, 3)
    assert prepare_inputs([], model.input_specs) == {}
    prepared[("standardize", 64)][:] = 0.0  # a blank photo: no bright region, so no disc
    assert (model.predict([image], prepared)[0].mask == 255).all()


def test_a_batch_of_different_sizes_keeps_each_photo_apart() -> None:
    small, small_truth = photo_with_bright_disc(80, 80, (20, 60), 8)
    large, large_truth = photo_with_bright_disc()
    results = predictor([member("disc", BrightRegion())], [member("fovea", BrightestCell())]).predict([small, large])
    assert [r.mask.shape for r in results] == [(80, 80), (96, 160)]
    assert dice(results[0].mask < 255, small_truth) > 0.7 and dice(results[1].mask < 255, large_truth) > 0.85
    assert np.hypot(results[0].fovea[0] - 20, results[0].fovea[1] - 60) < 10


# --------------------------------------------------------------------------------------------
# The real command, end to end
# --------------------------------------------------------------------------------------------


def _image_sizes(dataset: Path) -> dict[str, tuple[int, int]]:
    return {p.stem: cv2.imread(str(p)).shape[:2] for p in sorted((dataset / "Images").glob("*.jpg"))}


class CentreThird(nn.Module):
    """Foreground on the central third of its input: (B, C, S, S) -> (B, 1, S, S)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full_like(x[:, :1], -20.0)
        third = x.shape[-1] // 3
        logits[..., third : 2 * third, third : 2 * third] = 20.0
        return logits


class VesselChannel(nn.Module):
    """Foreground where the vessel channel (the 4th) is over one half: (B, 4, S, S) -> (B, 1, S, S)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40 * (x[:, 3:4] - 0.5)


CROP = {"data.view": "disc", "data.vessel_input": "none"}


def crop_predictor(*, whole_disc: bool = True, cup: nn.Module | None = None) -> Predictor:
    """Stage 1 (whole photograph): bright-region disc; stage 2 (crop): bright-region disc, a cup on
    the crop's central third, a classifier at 0.75; on the whole photograph a classifier at 0.5."""
    return Predictor(
        {"vessel": [member("vessel", LeftHalf())],
         "disc": ([member("disc", BrightRegion())] if whole_disc else []) + [member("disc", BrightRegion(), **CROP)],
         "cup": [member("cup", LeftHalf()), member("cup", cup or CentreThird(), **CROP)],
         "fovea": [member("fovea", BrightestCell())],
         "glaucoma": [member("glaucoma", Constant(0.0)), member("glaucoma", Constant(float(np.log(3))), **CROP)]},
        CPU_FP32)


def test_two_stages_segment_the_crop_around_the_disc_found_on_the_whole_photograph() -> None:
    from funduskit.data.view import DISC_CROP_SCALE

    image, truth = photo_with_bright_disc(centre=(120, 40), radius=12)
    [prediction] = crop_predictor().predict([image], views=["whole"])
    assert prediction.view == "whole" and prediction.crop is not None
    crop = prediction.crop
    assert crop.side == pytest.approx(25 * DISC_CROP_SCALE, abs=2)
    assert crop.x0 + crop.side / 2 == pytest.approx(120.5, abs=1.5) and crop.y0 + crop.side / 2 == pytest.approx(40.5, abs=1.5)
    assert dice(prediction.mask < 255, truth) > 0.85
    # the cup comes from the crop network (the crop's centre), not the whole photograph's left half
    rows, cols = np.nonzero(prediction.mask == 0)
    assert rows.size and abs(cols.mean() - 120) < 2 and abs(rows.mean() - 40) < 2
    assert cols.max() - cols.min() + 1 == pytest.approx(crop.side / 3, abs=2)
    assert prediction.fovea is not None  # the whole photograph keeps its fovea
    assert prediction.member_probabilities == pytest.approx([0.5, 0.75], abs=1e-6)  # both views answer


def test_a_disc_crop_is_its_own_crop_and_has_no_fovea() -> None:
    image, truth = photo_with_bright_disc(120, 120, (60, 60), 40)
    [prediction] = crop_predictor(whole_disc=False).predict([image], views=["disc"])
    assert prediction.view == "disc" and (prediction.crop.x0, prediction.crop.y0, prediction.crop.side) == (0, 0, 120)
    assert dice(prediction.mask < 255, truth) > 0.9
    assert prediction.fovea is None and prediction.fovea_spread is None
    assert prediction.glaucoma_probability == pytest.approx(0.75, abs=1e-6)  # only the crop classifier


def test_a_network_trained_without_vessel_maps_gets_an_empty_vessel_channel() -> None:
    image, _ = photo_with_bright_disc(120, 120, (60, 60), 40)
    [with_maps] = crop_predictor(whole_disc=False, cup=VesselChannel()).predict([image], views=["disc"])
    assert not (with_maps.mask == 0).any()  # the crop cup network saw zeros, not the left-half vessel map
    run = member("cup", VesselChannel(), **{"data.view": "disc"})  # vessel_input auto: it takes the map
    assert run.takes_vessel_map


def test_two_stages_need_no_whole_photograph_cup_network_and_may_find_no_disc() -> None:
    image, truth = photo_with_bright_disc(centre=(120, 40), radius=12)
    whole_disc = member("disc", BrightRegion(), **{"data.vessel_input": "none"})  # no vessel network needed
    stages = Predictor({"disc": [whole_disc, member("disc", BrightRegion(), **CROP)],
                        "cup": [member("cup", CentreThird(), **CROP)]}, CPU_FP32)
    [found] = stages.predict([image], views=["whole"])
    assert dice(found.mask < 255, truth) > 0.85 and (found.mask == 0).any()
    assert found.fovea is None and np.isnan(found.glaucoma_probability)  # no fovea or glaucoma networks
    [blank] = stages.predict([np.full((96, 160, 3), 30, np.uint8)], views=["whole"])
    assert (blank.mask == 255).all() and blank.crop is None  # stage 1 found no disc: nothing to crop


def test_whole_photographs_need_a_whole_photograph_disc_network() -> None:
    image, _ = photo_with_bright_disc()
    with pytest.raises(FunduskitError, match="disc network trained on whole photographs"):
        crop_predictor(whole_disc=False).predict([image], views=["whole"])


def test_predict_writes_every_output(first_run, dataset: Path) -> None:
    out, _, completed = first_run
    sizes = _image_sizes(dataset)
    assert "3 predicted" not in completed.stdout and "4 predicted" in completed.stdout
    for stem, shape in sizes.items():
        mask = cv2.imread(str(out / "segmentation" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == shape and set(np.unique(mask)) <= {0, 128, 255} and (mask < 255).any()
        overlay = cv2.imread(str(out / "overlays" / f"{stem}.png"))
        assert overlay.shape[0] == 480 and overlay.shape[1] > 480
        vessels = cv2.imread(str(out / "vessels" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert vessels.dtype == np.uint8 and vessels.shape == shape  # (a random tiny network: flat)
        for part in ("disc", "cup"):
            probability = np.load(out / "probabilities" / f"{stem}_{part}.npy")
            assert probability.dtype == np.float16 and probability.shape == shape  # small photos: full size
            assert 0.0 <= probability.min() <= probability.max() <= 1.0
    classification = (out / "classification_results.csv").read_text().splitlines()
    assert classification[0] == "FileName,Glaucoma Risk" and len(classification) == 4
    fovea = (out / "fovea_location_results.csv").read_text().splitlines()
    assert fovea[0] == "ImageName,Fovea_X,Fovea_Y" and sorted(r.split(",")[0] for r in fovea[1:]) == [
        f"{stem}.jpg" for stem in sizes]
    records = {r["image_id"]: r for r in json.loads((out / "results.json").read_text())}
    for stem, (height, width) in sizes.items():
        record = records[f"{stem}.jpg"]
        assert record["status"] == "ok" and (record["height"], record["width"]) == (height, width)
        assert 0.0 <= record["glaucoma_probability"] <= 1.0 and record["glaucoma_spread"] >= 0.0
        assert 0.0 <= record["vcdr"] <= 1.0 and record["disc_area"] > 0
        assert record["eye"] in ("left", "right") and record["vessel_file"] == f"vessels/{stem}.png"
        assert np.isfinite([record["fovea_x"], record["fovea_y"]]).all()
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].startswith("image_id,image_path,status,error") and len(table) == 5
    run = json.loads((out / "predict.json").read_text())
    assert (run["total"], run["predicted"], run["skipped"], run["failed"]) == (4, 4, 0, 1)
    assert run["options"]["tta"] is True and len(run["runs"]["disc"]) == 2


def test_a_corrupt_file_is_recorded_and_the_run_goes_on(first_run, corrupt_photo: Path) -> None:
    out, _, completed = first_run
    record = json.loads((out / "results" / f"{corrupt_photo.name}.json").read_text())
    assert record["status"] == "error" and str(corrupt_photo) in record["error"]
    assert record["glaucoma_probability"] is None and record["mask_file"] is None
    assert "1 could not be read" in completed.stdout
    assert not (out / "segmentation" / "broken.png").exists()
    assert "broken.jpg" not in (out / "classification_results.csv").read_text()
    report = (out / "report.html").read_text()
    assert report.count('<tr class="ok"') == 3 and report.count('<tr class="error"') == 1


def test_the_submission_scores_with_funduskit_evaluate(first_run, dataset: Path) -> None:
    out, _, _ = first_run
    summary_path = out.parent / "summary.json"
    assert main(["evaluate", "--pred", str(out), "--gt", str(dataset), "--out", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    text = json.dumps(summary)
    for key in ("mean_disc_dice", "mean_cup_dice", "mean_vcdr_error", "mean_fovea_distance"):
        assert key in text


def test_a_restarted_run_skips_what_is_done(first_run, capsys: pytest.CaptureFixture[str]) -> None:
    out, command, _ = first_run
    records = sorted((out / "results").glob("*.json"))
    interrupted = out / "results" / "S0002.jpg.json"
    interrupted.unlink()  # as if the run had stopped before this photograph's record
    before = {p.name: p.stat().st_mtime_ns for p in records if p.exists()}
    assert main(command[3:]) == 0
    assert "1 predicted, 3 skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in records if p.name in before} == before
    assert interrupted.is_file()
    assert len((out / "classification_results.csv").read_text().splitlines()) == 4
    # Other options (no flips) make the records stale: everything is predicted again.
    assert main([*command[3:command.index("--tta")], *command[command.index("--tta") + 1:]]) == 0
    assert "4 predicted, 0 skipped" in capsys.readouterr().out


def test_predict_tells_whole_photographs_from_disc_crops(models_dir: Path, dataset: Path, tmp_path: Path) -> None:
    """The command with crop networks beside the whole-photograph ones: a synthetic whole
    photograph goes through the two stages, a crop cut from it is detected as a crop (no fovea)."""
    import shutil

    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    for task, seed in (("disc", 11), ("cup", 12), ("glaucoma", 13)):
        make_run(models / "crops", task, task, seed, **CROP, **({"data.preprocessing": "lite"} if task == "glaucoma" else {}))
    photos = tmp_path / "photos"
    photos.mkdir()
    whole = sorted((dataset / "Images").iterdir())[0]
    shutil.copy(whole, photos / "whole.jpg")
    image = cv2.imread(str(whole))
    height, width = image.shape[:2]
    crop = image[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4]  # retina to its corners
    cv2.imwrite(str(photos / "crop.png"), crop)
    out = tmp_path / "out"  # random crop networks find no confident disc: graded, answered all the same
    assert main(["predict", str(photos), "--models", str(models), "--out", str(out), "--quiet", "--quality", "off"]) == 0
    records = {name: json.loads((out / "results" / f"{name}.json").read_text()) for name in ("whole.jpg", "crop.png")}
    assert records["whole.jpg"]["view"] == "whole" and records["crop.png"]["view"] == "disc"
    assert records["crop.png"]["fovea_x"] is None
    side = max(crop.shape[:2])
    assert records["crop.png"]["crop"] == [(crop.shape[1] - side) // 2, (crop.shape[0] - side) // 2, side]
    assert records["whole.jpg"]["fovea_x"] is not None
    fovea_rows = (out / "fovea_location_results.csv").read_text().splitlines()
    assert len(fovea_rows) == 2 and fovea_rows[1].startswith("whole.jpg")  # the header and the whole photograph
    # --view says it for every photograph: the whole one read as a crop has no fovea either
    forced = tmp_path / "forced"
    assert main(["predict", str(photos), "--models", str(models), "--out", str(forced), "--view", "disc", "--quiet"]) == 0
    record = json.loads((forced / "results" / "whole.jpg.json").read_text())
    assert record["view"] == "disc" and record["fovea_x"] is None


def test_predict_with_disc_and_cup_networks_only(dataset: Path, tmp_path: Path) -> None:
    """A models folder as the README's real-data example leaves it: a whole-photograph disc network
    and crop disc and cup networks, no vessel, fovea or glaucoma network."""
    models = tmp_path / "models"
    make_run(models, "disc", "disc-whole", 21, disc_bias=4.0, **{"data.vessel_input": "none"})
    make_run(models, "disc", "disc-crop", 22, disc_bias=4.0, **CROP)
    make_run(models, "cup", "cup-crop", 23, **CROP)
    out = tmp_path / "out"  # the folder's models alone, not the starter models for the tasks it lacks
    assert main(["predict", str(dataset / "Images"), "--models", str(models), "--out", str(out), "--quiet",
                 "--no-starter"]) == 0
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    assert all(r["glaucoma_probability"] is None and r["fovea_x"] is None and r["vessel_file"] is None
               for r in records)
    assert all(r["crop"] is not None and r["disc_area"] > 0 for r in records)  # the two stages ran


def test_predict_on_a_real_photograph(models_dir: Path, tmp_path: Path) -> None:
    from skimage import data

    photo = tmp_path / "retina.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(data.retina(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"  # random tiny networks: graded, answered all the same
    assert main(["predict", str(photo), "--models", str(models_dir), "--out", str(out), "--quiet",
                 "--quality", "off"]) == 0
    mask = cv2.imread(str(out / "segmentation" / "retina.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (1411, 1411) and set(np.unique(mask)) <= {0, 128, 255}
    for name in ("classification_results.csv", "fovea_location_results.csv", "results.csv", "results.json",
                 "report.html", "overlays/retina.png", "results/retina.jpg.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text())[0]["status"] == "ok"


# --------------------------------------------------------------------------------------------
# funduskit tune
# --------------------------------------------------------------------------------------------


def test_tune_picks_thresholds_and_predict_reads_them(dataset: Path, models_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from funduskit.data.io import load_mask

    models = tmp_path / "models"
    models.mkdir()
    pred = tmp_path / "pred"
    (pred / "probabilities").mkdir(parents=True)
    (pred / "predict.json").write_text(json.dumps({"models_dir": str(models)}))
    for mask_path in sorted((dataset / "Disc_Masks").glob("*.png")):
        reference = load_mask(mask_path)
        disc, cup = reference < 255, reference == 0
        # Disc maps 0.3 inside / 0.1 outside: every threshold in (0.1, 0.3] is perfect, 0.3 is
        # closest to 0.5. Cup maps 0.8 in the cup, 0.6 on the rim: (0.6, 0.8] is perfect, 0.65 wins.
        disc_map = np.where(disc, 0.3, 0.1).astype(np.float16)
        cup_map = np.where(cup, 0.8, np.where(disc, 0.6, 0.0)).astype(np.float16)
        np.save(pred / "probabilities" / f"{mask_path.stem}_disc.npy", disc_map)
        np.save(pred / "probabilities" / f"{mask_path.stem}_cup.npy", cup_map)
    assert main(["tune", "--pred", str(pred), "--gt", str(dataset)]) == 0
    assert "thresholds.json" in capsys.readouterr().out
    chosen = json.loads((models / "thresholds.json").read_text())
    assert (chosen["disc"], chosen["cup"], chosen["images"]) == (0.3, 0.65, 3)
    assert chosen["disc_dice"] == pytest.approx(1.0) and chosen["cup_dice"] == pytest.approx(1.0)
    assert chosen["default_scores"]["cup_dice"] < 1.0  # at 0.5 the rim counts as cup
    assert read_thresholds(models) == Thresholds(0.3, 0.65)


def test_tune_says_what_is_missing(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--save-probabilities"):
        from funduskit.inference.tuning import tune

        tune(tmp_path, dataset, out=tmp_path)


def test_eye_side_convention_agrees_with_the_synthetic_truth(dataset: Path) -> None:
    from funduskit.inference.postprocess import infer_eye_side

    cases = json.loads((dataset / "synth.json").read_text())["cases"]
    assert [infer_eye_side(c["disc_center"][0], c["fovea"][0]) for c in cases] == [c["eye"] for c in cases]


def test_no_file_is_passed_over_in_silence(models_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """JPEG, PNG, WebP, GIF and a suffix-less JPEG are predicted, a degraded photograph predicted and
    rejected by the quality gate; a text file, a hidden file and a photograph whose name is taken are
    listed with the reason (console, predict.json, report)."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.retina()).resize((160, 160))
    folder = tmp_path / "photos"
    folder.mkdir()
    photo.save(folder / "a.jpg")
    photo.save(folder / "b.png")
    photo.save(folder / "c.webp")
    photo.save(folder / "d.gif")
    photo.save(folder / "e_without_suffix", format="JPEG")
    Image.fromarray((np.asarray(photo) * 0.12).astype(np.uint8)).save(folder / "f_dark.jpg")  # a degraded photo
    (folder / "notes.txt").write_text("not a photograph")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    other = tmp_path / "elsewhere"
    other.mkdir()
    photo.save(other / "a.png")  # same stem as photos/a.jpg: its results would overwrite
    out = tmp_path / "out"
    assert main(["predict", str(folder), str(other), "--models", str(models_dir), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    records = {r["image_id"]: r for r in json.loads((out / "results.json").read_text())}
    assert sorted(records) == ["a.jpg", "b.png", "c.webp", "d.gif", "e_without_suffix", "f_dark.jpg"]
    assert all(r["status"] == "ok" for r in records.values())
    dark = records["f_dark.jpg"]  # predicted, and rejected by the quality gate, with the reason and no answers
    assert dark["quality"] == "reject" and "too dark" in dark["quality_reasons"] and dark["glaucoma_probability"] is None
    assert "Quality:" in printed and "reject" in printed
    passed_over = {Path(item["path"]).name: item["reason"] for item in
                   json.loads((out / "predict.json").read_text())["passed_over"]}
    assert set(passed_over) == {"notes.txt", ".DS_Store", "a.png"}
    assert "not an image" in passed_over["notes.txt"] and "hidden" in passed_over[".DS_Store"]
    assert "overwrite" in passed_over["a.png"] and "a.jpg" in passed_over["a.png"]
    assert "3 other file(s) not predicted" in printed and "notes.txt" in printed
    report = (out / "report.html").read_text()
    assert "Files not predicted" in report and "notes.txt" in report


def test_models_lists_each_run_with_its_data_metric_and_terms(models_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    run = make_run(models, "glaucoma", "glaucoma-crops", 31, **CROP)
    (run / "split.csv").write_text("# split=stratified n_folds=5 fold=0\nimage_id,fold,role,label,source,split\n"
                                   "a.png,1,train,1,rim-one-dl,train\nb.png,2,train,0,rim-one-dl,train\n"
                                   "c.png,0,validation,0,rim-one-dl,train\nd.png,1,train,0,chase_db1,\n")
    (run / "metrics.csv").write_text("epoch,lr,val_auroc\n1,0.001,0.81\n2,0.001,0.93\n3,0.001,nan\n4,0.001,0.90\n")
    make_run(models, "vessel", "vessel", 32)  # no split.csv or metrics.csv: unknown data, no metric
    assert main(["models", "--models", str(models), "--json"]) == 0
    entries = {Path(e["name"]).name: e for e in json.loads(capsys.readouterr().out)}
    crops = entries["glaucoma-crops"]
    assert crops["task"] == "glaucoma" and crops["view"] == "disc" and crops["input_size"] == 64
    assert crops["training_data"] == "rim-one-dl (2), chase_db1 (1)"
    assert crops["metric"] == "val_auroc 0.9300 (epoch 2)"
    assert "Fumero" in crops["terms"] and "CC BY 4.0" in crops["terms"]
    assert crops["size_mb"] > 0 and "test_efficientnet" in crops["network"]
    assert entries["vessel"]["training_data"] == "unknown" and entries["vessel"]["metric"] == ""
    assert main(["models", "--models", str(models_dir)]) == 0
    assert "9 trained model(s)" in capsys.readouterr().out


def test_whole_photographs_with_only_crop_networks_are_recorded_as_errors(dataset: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_run(models, "disc", "disc-crop", 41, **CROP)
    make_run(models, "cup", "cup-crop", 42, **CROP)
    out = tmp_path / "out"
    assert main(["predict", str(dataset / "Images"), "--models", str(models), "--out", str(out), "--quiet",
                 "--view", "whole"]) == 0
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 3 and all(r["status"] == "error" and "whole photographs" in r["error"] for r in records)
