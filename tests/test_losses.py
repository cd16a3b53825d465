"""Losses on small hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from funduskit.core.errors import FunduskitError
from funduskit.training.losses import (
    BCEDiceLoss,
    FoveaLoss,
    GeneratorAdversarialLoss,
    balanced_bce,
    build_loss,
    discriminator_loss,
    soft_dice,
)

BIG = 30.0  # a logit whose sigmoid is 1 to float precision


def test_soft_dice_of_a_perfect_and_a_disjoint_prediction() -> None:
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1
    perfect = (target * 2 - 1) * BIG
    assert soft_dice(perfect, target).item() == pytest.approx(1.0, abs=1e-6)
    disjoint = (1 - target * 2) * BIG
    # (2 * 0 + 1) / (8 + 8 + 1) with the smoothing term eps = 1
    assert soft_dice(disjoint, target).item() == pytest.approx(1 / 17, abs=1e-6)


def test_bce_dice_is_the_weighted_sum_of_its_parts() -> None:
    logits = torch.zeros(2, 1, 3, 3)
    target = torch.ones(2, 1, 3, 3)
    parts = BCEDiceLoss(bce_weight=2.0, dice_weight=0.5)(logits, target)
    assert parts["bce"].item() == pytest.approx(math.log(2), rel=1e-6)
    # sigmoid(0) = 0.5: (2 * 4.5 + 1) / (4.5 + 9 + 1) per image
    dice = (2 * 4.5 + 1) / (4.5 + 9 + 1)
    assert parts["soft_dice"].item() == pytest.approx(dice, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(2 * math.log(2) + 0.5 * (1 - dice), rel=1e-6)


def test_balanced_bce_weighs_the_single_positive_like_all_negatives_together() -> None:
    target = torch.zeros(1, 10, 10)
    target[0, 3, 4] = 1
    logits = torch.zeros(1, 10, 10)
    # every cell at p = 0.5: both halves are log 2, total log 2
    assert balanced_bce(logits, target).item() == pytest.approx(math.log(2), rel=1e-6)
    logits[0, 3, 4] = BIG  # the positive right: only the negatives' half remains
    assert balanced_bce(logits, target).item() == pytest.approx(0.5 * math.log(2), rel=1e-5)


def test_fovea_offsets_count_only_at_the_fovea_cell() -> None:
    target = torch.zeros(1, 3, 4, 4)
    target[0, 0, 1, 2] = 1
    target[0, 1, 1, 2], target[0, 2, 1, 2] = 0.25, 0.75
    logits = torch.full((1, 3, 4, 4), -BIG)
    logits[0, 0, 1, 2] = BIG
    logits[0, 1, 1, 2] = math.log(0.25 / 0.75)  # sigmoid = 0.25, exact
    logits[0, 2, 1, 2] = math.log(0.75 / 0.25)
    loss = FoveaLoss(offset_loss="l1")
    assert loss(logits, target)["offset"].item() == pytest.approx(0.0, abs=1e-6)
    logits[0, 1:, 0, 0] = 5.0  # wrong offsets elsewhere do not matter
    assert loss(logits, target)["loss"].item() == pytest.approx(0.0, abs=1e-5)
    logits[0, 1, 1, 2] = 0.0  # sigmoid 0.5 vs 0.25: L1 mean over x, y = 0.125
    assert loss(logits, target)["offset"].item() == pytest.approx(0.125, rel=1e-5)


def test_fovea_loss_without_a_fovea_in_view_has_no_offset_term() -> None:
    parts = FoveaLoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    assert parts["offset"].item() == 0.0 and math.isfinite(parts["loss"].item())


def test_fovea_gaussian_target_peaks_at_the_cell() -> None:
    one_hot = torch.zeros(1, 5, 5)
    one_hot[0, 2, 3] = 1
    soft = FoveaLoss(gaussian_sigma=1.0)._confidence_target(one_hot)
    assert soft[0, 2, 3].item() == 1.0
    assert soft[0, 2, 2].item() == pytest.approx(math.exp(-0.5))


def test_generator_and_discriminator_losses() -> None:
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.ones(1, 1, 2, 2)
    loss = GeneratorAdversarialLoss(adversarial_weight=0.1)
    fooled = loss(logits, target, torch.tensor([BIG]))
    caught = loss(logits, target, torch.tensor([-BIG]))
    assert fooled["loss"].item() == pytest.approx(math.log(2), rel=1e-5)
    assert caught["loss"].item() == pytest.approx(math.log(2) + 0.1 * BIG, rel=1e-5)
    assert discriminator_loss(torch.tensor([BIG]), torch.tensor([-BIG])).item() == pytest.approx(0.0, abs=1e-6)
    assert discriminator_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2), rel=1e-6)


def test_losses_are_built_by_name_with_clear_errors() -> None:
    assert isinstance(build_loss("bce_dice", dice_weight=0.0), BCEDiceLoss)
    with pytest.raises(FunduskitError, match="unknown loss"):
        build_loss("focal")
    with pytest.raises(FunduskitError, match="'fovea'"):
        build_loss("fovea", radius=3)
    with pytest.raises(FunduskitError, match="offset_loss"):
        build_loss("fovea", offset_loss="l2")
