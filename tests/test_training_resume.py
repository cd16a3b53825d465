"""``--resume`` gives the uninterrupted result; a finished run is never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_helpers import samples, tiny_config, tiny_data  # noqa: F401 (fixtures)

from funduskit.core.config import override
from funduskit.core.errors import FunduskitError
from funduskit.data.sample import Sample
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.training import fit, resume_config


@pytest.mark.parametrize(("task", "workers"), [("disc", 0), ("vessel", 1)])
def test_resume_gives_the_uninterrupted_result(task: str, workers: int, samples: list[Sample], tmp_path: Path) -> None:
    """2 epochs in one go == 1 epoch, stop, resume, 1 more (same seed, same order, same augmentation)."""
    # exactness, not learning, is tested here: the smallest input
    config = tiny_config(task, epochs=2, **{"runtime.num_workers": workers, "data.input_size": 64})
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
    config = tiny_config("glaucoma", epochs=1, **{"data.input_size": 64})
    fit(config, samples, tmp_path / "run", show_progress=False)
    with pytest.raises(FunduskitError, match="already holds a training run; resume it"):
        fit(config, samples, tmp_path / "run", show_progress=False)
    with pytest.raises(FunduskitError, match="no last.pt"):
        fit(config, samples, tmp_path / "empty", resume=True, show_progress=False)
