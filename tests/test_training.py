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


def test_a_disc_view_network_learns_from_whole_photographs_cut_around_their_disc(
        samples: list[Sample], tmp_path: Path) -> None:
    """``data.view: disc``: each whole photograph is cut to the square around its reference disc
    (side 1.35 x the disc's extent), so the disc fills the crop as in RIM-ONE's crops."""
    import numpy as np

    from funduskit.data.view import DISC_CROP_SCALE
    from funduskit.training.items import build_items
    from funduskit.training.tasks import get_task

    config = tiny_config("disc", **{"data.view": "disc", "data.vessel_input": "none"})
    task = get_task("disc")
    items = build_items(task, config, samples[:4], threads=1, show_progress=False, description="")
    for item, sample in zip(items, samples[:4]):
        disc = task.reference(sample)  # type: ignore[attr-defined]
        rows, cols = np.nonzero(disc)
        extent = max(np.ptp(rows), np.ptp(cols)) + 1
        assert item.box is not None and item.box.side == pytest.approx(extent * DISC_CROP_SCALE, abs=1)
        # a round disc of diameter side / 1.35 covers pi / 4 / 1.35**2 = 0.43 of the crop
        assert item.mask.mean() == pytest.approx(np.pi / 4 / DISC_CROP_SCALE**2, abs=0.08)
        assert not item.vessels.any()  # data.vessel_input none: an all-zero vessel channel

    result = fit(config, samples, tmp_path / "run", show_progress=False)
    validation = read_split(tmp_path / "run" / "split.csv").select(samples, "validation")
    record = evaluate_checkpoint(tmp_path / "run", validation, original_size=True)
    # the crop is mostly disc: a network that learned anything beats "nothing is disc" by far
    assert record["dice_original_size"] > 0.6 and result.best_metric > 0.6
    assert load_config(tmp_path / "run" / "config.yaml").data.view == "disc"


def test_random_patch_cuts_the_same_square_from_every_array_and_moves_the_fovea() -> None:
    import numpy as np

    from funduskit.training.data import random_patch

    side, size = 40, 16
    rows, cols = np.mgrid[:side, :side]
    arrays = {"image": np.stack([rows, cols, rows * 0], axis=-1).astype(np.float32),
              "mask": (rows * side + cols).astype(np.int32), "vessels": None, "fovea": (30.0, 12.5)}
    corners = set()
    for seed in range(20):
        patch = random_patch(arrays, size, np.random.default_rng(seed))
        top, left = int(patch["image"][0, 0, 0]), int(patch["image"][0, 0, 1])
        corners.add((top, left))
        assert patch["image"].shape == (size, size, 3) and patch["mask"].shape == (size, size)
        assert 0 <= top <= side - size and 0 <= left <= side - size
        np.testing.assert_array_equal(patch["mask"], arrays["mask"][top:top + size, left:left + size])
        assert patch["vessels"] is None and patch["fovea"] == (30.0 - left, 12.5 - top)
    assert len(corners) > 10  # the corner is drawn, not fixed


def test_patch_training_gives_patches_per_image_items_of_the_patch_size_and_learns(
        samples: list[Sample], tmp_path: Path) -> None:
    """``data.patch_size`` / ``data.patches_per_image``: an epoch has images x patches items,
    each a random square of its image (its own augmentation and corner); validation sees the
    whole image, so the run's validation Dice is of whole images."""
    import torch

    from funduskit.training.data import AugmentedDataset
    from funduskit.training.items import build_items
    from funduskit.training.tasks import get_task

    config = tiny_config("vessel", **{"data.patch_size": 64, "data.patches_per_image": 2, "batch_size": 4, "epochs": 12})
    task = get_task("vessel")
    items = build_items(task, config, samples[:4], threads=1, show_progress=False, description="")
    dataset = AugmentedDataset(items, preprocessing="standardize", seed=0, patch_size=64, repeats=3,
                               to_tensors=lambda item, arrays: task.to_tensors(item, arrays, {}))
    assert len(dataset) == 12
    first, again, other_copy = dataset[(0, 1)], dataset[(0, 1)], dataset[(0, 5)]
    assert first["input"].shape == (3, 64, 64) and first["target"].shape == (1, 64, 64)
    assert torch.equal(first["input"], again["input"])  # seeded by (seed, epoch, index)
    assert int(first["index"]) == int(other_copy["index"]) == 1  # index 5 is the second copy of item 1
    assert not torch.equal(first["input"], other_copy["input"])

    result = fit(config, samples, tmp_path / "run", show_progress=False)
    history = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.best_metric > 2 * chance_level("vessel", tmp_path / "run", samples, config.data.input_size)


def test_a_patch_size_the_network_cannot_take_is_refused_naming_the_field(samples: list[Sample], tmp_path: Path) -> None:
    from funduskit.core.errors import FunduskitError

    with pytest.raises(FunduskitError, match=r"data.patch_size 60 is not a multiple of 8"):
        fit(tiny_config("vessel", **{"data.patch_size": 60}), samples, tmp_path / "run", show_progress=False)
