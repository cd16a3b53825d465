"""The report's plateau-with-reset schedule on scripted metric sequences, with hand-computed rates."""

from __future__ import annotations

import pytest
import torch

from funduskit.training.scheduler import ConstantLR, ReduceOnPlateauWithReset


def _optimizer(lr: float = 1e-3, groups: int = 1) -> torch.optim.Optimizer:
    params = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr * (k + 1)} for k in range(groups)]
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


# patience 2, factor 0.1, floor 1e-5, from 1e-3: best 0.5 -> two epochs without gain -> 1e-4 ->
# new best 0.6 -> two more -> 1e-5 -> two more: 1e-6 would be below the floor -> reset to 1e-3.
SCRIPT = [
    (0.5, 1e-3),   # first epoch: best
    (0.4, 1e-3),   # 1 without gain
    (0.5, 1e-4),   # 2 without gain (equal is no gain) -> divide by 10
    (0.6, 1e-4),   # new best, counter restarts
    (0.6, 1e-4),   # 1
    (0.55, 1e-5),  # 2 -> 1e-5
    (0.1, 1e-5),   # 1
    (0.1, 1e-3),   # 2 -> 1e-6 < floor 1e-5 -> reset to the initial rate
    (0.59, 1e-3),  # still below the best 0.6 (kept across the reset): 1
    (0.7, 1e-3),   # new best
]


def test_scripted_sequence_gives_hand_computed_rates() -> None:
    optimizer = _optimizer()
    scheduler = ReduceOnPlateauWithReset(optimizer, mode="max", factor=0.1, patience=2, min_lr=1e-5)
    for epoch, (metric, expected) in enumerate(SCRIPT):
        lr = scheduler.step(metric)
        assert lr == pytest.approx(expected, rel=1e-12), f"epoch {epoch}"
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
    assert scheduler.resets == 1
    assert scheduler.best == 0.7


def test_report_defaults_visit_four_rates_then_reset() -> None:
    """1e-3, 1e-4, 1e-5, 1e-6 (the floor itself is allowed), then back to 1e-3."""
    scheduler = ReduceOnPlateauWithReset(_optimizer(), patience=10, min_lr=1e-6)
    scheduler.step(0.9)
    rates = [scheduler.step(0.5) for _ in range(40)]
    assert rates[9] == pytest.approx(1e-4) and rates[8] == pytest.approx(1e-3)
    assert rates[19] == pytest.approx(1e-5)
    assert rates[29] == pytest.approx(1e-6)
    assert rates[39] == pytest.approx(1e-3)


def test_min_mode_and_nan_count_as_no_gain() -> None:
    scheduler = ReduceOnPlateauWithReset(_optimizer(), mode="min", patience=2, min_lr=1e-5)
    assert scheduler.step(1.0) == pytest.approx(1e-3)
    assert scheduler.step(0.5) == pytest.approx(1e-3)  # lower is better
    assert scheduler.step(float("nan")) == pytest.approx(1e-3)
    assert scheduler.step(0.7) == pytest.approx(1e-4)


def test_every_param_group_keeps_its_own_initial_rate() -> None:
    optimizer = _optimizer(1e-3, groups=2)
    scheduler = ReduceOnPlateauWithReset(optimizer, patience=1, min_lr=1e-6)
    scheduler.step(1.0)
    scheduler.step(0.0)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-4, 2e-4])


def test_state_dict_round_trip_continues_identically() -> None:
    first = ReduceOnPlateauWithReset(_optimizer(), patience=2, min_lr=1e-5)
    for metric, _ in SCRIPT[:5]:
        first.step(metric)
    optimizer = _optimizer()
    second = ReduceOnPlateauWithReset(optimizer, patience=7, min_lr=1e-9)  # overwritten by the state
    second.load_state_dict(first.state_dict())
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    for metric, expected in SCRIPT[5:]:
        assert second.step(metric) == pytest.approx(expected)
        first.step(metric)
    assert second.state_dict() == first.state_dict()


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        ReduceOnPlateauWithReset(_optimizer(), mode="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        ReduceOnPlateauWithReset(_optimizer(), factor=1.5)
    with pytest.raises(ValueError, match="below min_lr"):
        ReduceOnPlateauWithReset(_optimizer(1e-7), min_lr=1e-6)


def test_constant_schedule_never_changes() -> None:
    scheduler = ConstantLR(_optimizer(1e-5))
    assert [scheduler.step(m) for m in (0.1, 0.0, 0.0, 0.0)] == [1e-5] * 4
