"""Tiny trained-format runs (random networks, seconds to make) shared by the prediction and
server tests."""

from __future__ import annotations

from pathlib import Path

import torch

from funduskit.core.config import override, preset, save_config
from funduskit.models import create_model
from funduskit.runs.checkpoint import save_checkpoint

TINY_TWO_BRANCH = {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet"}
TINY_KWARGS = {
    "vessel": {"base_width": 4, "depth": 2},
    "disc": {**TINY_TWO_BRANCH, "decoder_channels": [8, 8, 8]},
    "cup": {**TINY_TWO_BRANCH, "decoder_channels": [8, 8, 8]},
    "fovea": {**TINY_TWO_BRANCH, "decoder_channels": [8, 8]},
    "glaucoma": {"backbone": "test_efficientnet"},
}


def tiny_config(task: str, size: int = 64, **changes: object):
    """The cpu preset of ``task`` with a tiny network at ``size`` x ``size``."""
    config = preset(task, "cpu")
    config = override(config, {"data.input_size": size, **{f"model.kwargs.{k}": v for k, v in TINY_KWARGS[task].items()},
                               **changes})
    return config


def make_run(root: Path, task: str, name: str, seed: int, *, disc_bias: float = 0.0, **changes: object) -> Path:
    """A run directory as training writes it (config.yaml + best.pt) holding a random tiny network."""
    config = tiny_config(task, **changes)
    torch.manual_seed(seed)
    model = create_model(config.model.name, **config.model.kwargs)
    if disc_bias:
        with torch.no_grad():
            model.head.bias += disc_bias  # a disc everywhere: non-empty masks, measures and eye side
    run = root / name
    save_config(config, run / "config.yaml")
    save_checkpoint({"task": task, "epoch": 0, "models": {"model": model.state_dict()}, "config": config.to_dict()},
                    run / "best.pt")
    return run


def make_models(root: Path) -> Path:
    """One tiny network per task (vessel, disc, cup, fovea, glaucoma) under ``root``; disc
    networks biased so that every photograph has a disc (non-empty masks and measures)."""
    make_run(root / "vessel", "vessel", "fold0", 0)
    make_run(root / "disc", "disc", "fold0", 1, disc_bias=2.0)
    make_run(root / "cup", "cup", "fold0", 2)
    make_run(root / "fovea", "fovea", "fold0", 3)
    make_run(root / "glaucoma", "glaucoma", "fold0", 4)
    return root
