"""Atomic checkpoints and the random-generator state they carry."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from funduskit.core.errors import DataError
from funduskit.runs import checkpoint as ckpt


def test_round_trip_loads_with_weights_only(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    state = {"task": "glaucoma", "epoch": 4, "models": {"model": model.state_dict()}, "best_metric": 0.9,
             "config": {"task": "glaucoma", "data": {"input_size": 64}}, "rng": ckpt.capture_rng_state()}
    path = ckpt.save_checkpoint(state, tmp_path / "run" / "last.pt")
    loaded = ckpt.load_checkpoint(tmp_path / "run")  # a run directory means its last.pt
    assert loaded["epoch"] == 4 and loaded["config"]["data"]["input_size"] == 64
    torch.testing.assert_close(loaded["models"]["model"]["weight"], model.weight.detach())
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_interrupted_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    path = ckpt.save_checkpoint({"models": {}, "epoch": 1}, tmp_path / "last.pt")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({"models": {}, "epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_rng_state_round_trip_reproduces_every_generator() -> None:
    state = ckpt.capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn())
    random.random(), np.random.rand(5), torch.rand(5)  # move everything on
    ckpt.restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn()) == first


def test_foreign_or_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "nothing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(DataError, match="not a funduskit checkpoint"):
        ckpt.load_checkpoint(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot be read"):
        ckpt.load_checkpoint(garbage)
