"""The training loop on tiny synthetic data sets: every task learns, writes its run directory,
resumes exactly, fine-tunes, and the command line trains and explains missing labels."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from funduskit.config import TrainConfig, load_config, override, preset
from funduskit.datasets import read_dataset
from funduskit.errors import FunduskitError
from funduskit.sample import Sample
from funduskit.training import (
    build_model,
    evaluate_checkpoint,
    fit,
    load_checkpoint,
    load_trained_model,
    read_split,
    resume_config,
)
from funduskit.training.history import read_metrics_csv

TINY_ENCODER = "test_efficientnet"  # timm's test network: 82 k parameters, all reductions 2..32

# Per task: settings that make a tiny run learn in seconds on one thread.
TINY: dict[str, dict[str, object]] = {
    "disc": {"data.input_size": 96, "epochs": 4, "optimizer.lr": 3e-3,
             "model.kwargs.decoder_channels": [16, 16, 8]},
    "cup": {"data.input_size": 96, "epochs": 4, "optimizer.lr": 3e-3,
            "model.kwargs.decoder_channels": [16, 16, 8]},
    "fovea": {"data.input_size": 96, "epochs": 4, "optimizer.lr": 3e-3, "model.kwargs.decoder_channels": [16, 16]},
    # The GAN's pixel loss alone learns thin vessels slowly; the test adds a Dice term (a loss option).
    "vessel": {"data.input_size": 128, "epochs": 6, "batch_size": 2, "optimizer.lr": 3e-3,
               "loss.kwargs.dice_weight": 1.0, "model.kwargs.base_width": 8, "model.kwargs.depth": 3,
               "discriminator.kwargs.base_width": 4},
    "glaucoma": {"data.input_size": 96, "epochs": 4, "optimizer.lr": 3e-3},
}


def tiny_config(task: str, **changes: object) -> TrainConfig:
    """The cpu preset shrunk to tiny inputs and networks, one thread, no workers, 3 folds."""
    base: dict[str, object] = {"batch_size": 4, "runtime.num_workers": 0, "runtime.threads": 1,
                               "data.n_folds": 3, "data.augmentation": "light", **TINY[task]}
    if task in ("disc", "cup", "fovea"):
        base |= {"model.kwargs.photo_encoder": TINY_ENCODER, "model.kwargs.vessel_encoder": TINY_ENCODER}
    if task == "glaucoma":
        base["model.kwargs.backbone"] = TINY_ENCODER
    return override(preset(task, "cpu"), base | changes)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic photos (about 210 x 205 px) in the REFUGE2 split-folder layout, half glaucoma."""
    from funduskit.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("tiny") / "synthetic"
    generate_dataset(out, n=12, seed=5, scale=0.1, glaucoma_fraction=0.5)
    return out


@pytest.fixture(scope="module")
def samples(tiny_data: Path) -> list[Sample]:
    return read_dataset(tiny_data)


RUN_FILES = ("config.yaml", "split.csv", "augmentation.yaml", "last.pt", "best.pt", "metrics.csv", "curves.png")

def chance_level(task: str, run_dir: Path, samples: list[Sample], size: int) -> float:
    """What a trivial predictor reaches on the run's validation images.

    Segmentation: Dice of "everything is foreground" (``2p / (1 + p)`` for a foreground fraction
    ``p``); fovea: error of a random guess (about 40 % of the width, taken as 30 %); glaucoma: 0.5.
    """
    from funduskit.preprocess import Geometry
    from funduskit.training.data import binary_to_network
    from funduskit.training.tasks import get_task

    if task == "fovea":
        return 30.0
    if task == "glaucoma":
        return 0.5
    adapter = get_task(task)
    validation = read_split(run_dir / "split.csv").select(samples, "validation")
    fractions = []
    for sample in validation:
        reference = adapter.reference(sample)  # type: ignore[attr-defined]
        fractions.append(binary_to_network(reference, Geometry(*reference.shape, size)).mean())
    return float(np.mean([2 * p / (1 + p) for p in fractions]))


@pytest.mark.parametrize("task", ["disc", "cup", "fovea", "vessel", "glaucoma"])
def test_tiny_run_learns_and_writes_the_run_directory(task: str, samples: list[Sample], tmp_path: Path) -> None:
    config = tiny_config(task)
    result = fit(config, samples, tmp_path / "run", show_progress=False)

    assert all((tmp_path / "run" / name).is_file() for name in RUN_FILES)
    history = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert [row["epoch"] for row in history] == list(range(1, config.epochs + 1))
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < losses[0], f"{task}: training loss did not fall: {losses}"
    chance = chance_level(task, tmp_path / "run", samples, config.data.input_size)
    better = result.best_metric < chance if task == "fovea" else result.best_metric > chance
    assert better, f"{task}: {result.metric} {result.best_metric} vs chance {chance}"

    assert load_config(tmp_path / "run" / "config.yaml") == config
    split = read_split(tmp_path / "run" / "split.csv")
    assert len(split.validation_ids) == 4 and len(split.train_ids) == 8
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] + 1 == result.best_epoch and best["best_metric"] == result.best_metric
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from funduskit.augment import load_augmentation

    assert load_augmentation(tmp_path / "run" / "augmentation.yaml") is not None


@pytest.mark.parametrize(("task", "workers"), [("disc", 0), ("vessel", 1)])
def test_resume_gives_the_uninterrupted_result(task: str, workers: int, samples: list[Sample], tmp_path: Path) -> None:
    """2 epochs in one go == 1 epoch, stop, resume, 1 more (same seed, same order, same augmentation)."""
    config = tiny_config(task, epochs=2, **{"runtime.num_workers": workers})
    fit(config, samples, tmp_path / "whole", show_progress=False)
    fit(override(config, {"epochs": 1}), samples, tmp_path / "parts", show_progress=False)
    resumed = resume_config(tmp_path / "parts", epochs=2)
    fit(resumed, samples, tmp_path / "parts", resume=True, show_progress=False)

    whole, parts = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "parts")
    assert whole["epoch"] == parts["epoch"] == 1
    for role in whole["models"]:
        for key, value in whole["models"][role].items():
            torch.testing.assert_close(parts["models"][role][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert [r["train_loss"] for r in parts["history"]] == pytest.approx([r["train_loss"] for r in whole["history"]])


def test_a_finished_run_is_not_overwritten_and_resume_needs_a_run(samples: list[Sample], tmp_path: Path) -> None:
    config = tiny_config("glaucoma", epochs=1)
    fit(config, samples, tmp_path / "run", show_progress=False)
    with pytest.raises(FunduskitError, match="--resume"):
        fit(config, samples, tmp_path / "run", show_progress=False)
    with pytest.raises(FunduskitError, match="no last.pt"):
        fit(config, samples, tmp_path / "empty", resume=True, show_progress=False)


def test_fine_tuning_and_the_frozen_glaucoma_backbone(samples: list[Sample], tmp_path: Path) -> None:
    disc = fit(tiny_config("disc", epochs=1), samples, tmp_path / "disc", show_progress=False)
    cup_config = tiny_config("cup", **{"init.checkpoint": str(disc.run_dir)})
    cup_model = build_model(cup_config)
    disc_model, _ = load_trained_model(disc.run_dir)
    for key, value in disc_model.state_dict().items():  # same architecture: every tensor copied
        torch.testing.assert_close(cup_model.state_dict()[key], value)

    source = fit(tiny_config("glaucoma", epochs=1), samples, tmp_path / "glaucoma", show_progress=False)
    frozen_config = tiny_config("glaucoma", **{"init.backbone_checkpoint": str(source.run_dir),
                                               "model.kwargs.frozen_backbone": True})
    frozen = build_model(frozen_config)
    trainable = {name for name, p in frozen.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    reference, _ = load_trained_model(source.run_dir)
    for key, value in reference.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(frozen.state_dict()[key], value)
    frozen.train()
    assert not frozen.backbone.training  # BatchNorm statistics stay frozen
    result = fit(override(frozen_config, {"epochs": 1}), samples, tmp_path / "frozen", show_progress=False)
    trained, _ = load_trained_model(result.run_dir)
    for key, value in reference.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(trained.state_dict()[key], value, msg=key)


def test_vessel_model_feeds_the_disc_network_and_held_out_evaluation(samples: list[Sample], tmp_path: Path) -> None:
    vessel = fit(tiny_config("vessel", epochs=1), samples, tmp_path / "vessel", show_progress=False)
    config = tiny_config("disc", epochs=1, **{"data.vessel_model": str(vessel.run_dir)})
    no_masks = [Sample(**{**s.__dict__, "vessel_mask_path": None}) for s in samples]  # maps come from the model
    fit(config, no_masks, tmp_path / "disc", show_progress=False)
    scores = evaluate_checkpoint(tmp_path / "disc", no_masks)
    assert 0.0 <= scores["val_dice"] <= 1.0 and np.isfinite(scores["val_loss"])
    with pytest.raises(FunduskitError, match="--vessel-model"):
        fit(tiny_config("disc", epochs=1), no_masks, tmp_path / "needs-vessels", show_progress=False)


def test_missing_labels_are_named(samples: list[Sample], tmp_path: Path) -> None:
    unlabelled = [Sample(image_id=s.image_id, image_path=s.image_path) for s in samples]
    for task, words in (("vessel", "vessel masks"), ("fovea", "fovea positions"), ("glaucoma", "glaucoma labels"),
                        ("disc", "disc/cup masks")):
        with pytest.raises(FunduskitError, match=words):
            fit(tiny_config(task), unlabelled, tmp_path / task, show_progress=False)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "funduskit", "train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_trains_resumes_and_explains_missing_labels(tiny_data: Path, tmp_path: Path) -> None:
    tiny = ["--input-size", "64", "--folds", "3", "--workers", "0", "--threads", "1",
            "--set", f"model.kwargs.backbone={TINY_ENCODER}"]
    first = _cli("glaucoma", "--data", str(tiny_data), "--epochs", "1", *tiny, "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Best val_auroc" in first.stdout
    assert all((tmp_path / "run" / name).is_file() for name in RUN_FILES)
    config = load_config(tmp_path / "run" / "config.yaml")
    assert (config.data.input_size, config.data.n_folds, config.model.kwargs["backbone"]) == (64, 3, TINY_ENCODER)

    again = _cli("glaucoma", "--data", str(tiny_data), "--resume", "run", "--epochs", "2", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1

    no_vessels = tmp_path / "no-vessels"
    shutil.copytree(tiny_data, no_vessels, ignore=shutil.ignore_patterns("Vessel_Masks"))
    refused = _cli("vessel", "--data", str(no_vessels), cwd=tmp_path)
    assert refused.returncode == 2
    assert "no vessel masks" in refused.stderr and str(no_vessels) in refused.stderr
