"""Shared pieces of the training tests: tiny configurations and a tiny synthetic data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from funduskit.core.config import TrainConfig, override, preset
from funduskit.data.datasets import read_dataset
from funduskit.data.sample import Sample
from funduskit.training import read_split

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
    "glaucoma": {"data.input_size": 64, "epochs": 12, "batch_size": 2, "optimizer.lr": 3e-3},
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
    from funduskit.training.data import binary_to_network
    from funduskit.training.tasks import get_task
    from funduskit.transforms.preprocess import Geometry

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
