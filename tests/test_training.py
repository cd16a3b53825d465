"""Every task learns on a tiny synthetic data set and writes its whole run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import RUN_FILES, chance_level, samples, tiny_config, tiny_data  # noqa: F401 (fixtures)

from funduskit.core.config import load_config
from funduskit.data.sample import Sample
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.training import evaluate_checkpoint, fit, read_split
from funduskit.training.history import read_metrics_csv
from funduskit.transforms.augment import load_augmentation


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
    metric = result.best_metric
    if task == "glaucoma":
        # 4 validation images give AUROC steps of 0.25: score the 8 training images instead
        # (in eval mode, so the BatchNorm statistics the checkpoint carries are tested too).
        train = read_split(tmp_path / "run" / "split.csv").select(samples, "train")
        metric = evaluate_checkpoint(tmp_path / "run" / "last.pt", train)["val_auroc"]
    better = metric < chance if task == "fovea" else metric > chance
    assert better, f"{task}: {result.metric} {metric} vs chance {chance}"

    assert load_config(tmp_path / "run" / "config.yaml") == config
    split = read_split(tmp_path / "run" / "split.csv")
    assert len(split.validation_ids) == 4 and len(split.train_ids) == 8
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] + 1 == result.best_epoch and best["best_metric"] == result.best_metric
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_augmentation(tmp_path / "run" / "augmentation.yaml") is not None
