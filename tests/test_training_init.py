"""Starting weights (fine-tuning, frozen glaucoma backbone), the vessel-map input from a trained
vessel model, held-out evaluation, and refusals of data sets without the task's labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import samples, tiny_config, tiny_data  # noqa: F401 (fixtures)

from funduskit.core.config import override
from funduskit.core.errors import FunduskitError
from funduskit.data.sample import Sample
from funduskit.runs.networks import build_model, load_trained_model
from funduskit.training import evaluate_checkpoint, fit


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
    no_masks = [dataclasses.replace(s, vessel_mask_path=None) for s in samples]  # maps come from the model
    fit(config, no_masks, tmp_path / "disc", show_progress=False)
    scores = evaluate_checkpoint(tmp_path / "disc", no_masks)
    assert 0.0 <= scores["val_dice"] <= 1.0 and np.isfinite(scores["val_loss"])
    with pytest.raises(FunduskitError, match="set data.vessel_model"):
        fit(tiny_config("disc", epochs=1), no_masks, tmp_path / "needs-vessels", show_progress=False)


def test_missing_labels_are_named(samples: list[Sample], tmp_path: Path) -> None:
    unlabelled = [Sample(image_id=s.image_id, image_path=s.image_path) for s in samples]
    for task, words in (("vessel", "vessel masks"), ("fovea", "fovea positions"), ("glaucoma", "glaucoma labels"),
                        ("disc", "disc/cup masks")):
        with pytest.raises(FunduskitError, match=words):
            fit(tiny_config(task), unlabelled, tmp_path / task, show_progress=False)
