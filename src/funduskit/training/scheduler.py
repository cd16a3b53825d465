"""The report's learning-rate schedule: divide on a plateau, reset to the start below a floor.

Section 2.4 of the report: the learning rate starts at ``1e-3``; when the validation AUROC has not
improved for 10 epochs it is divided by 10; once a reduction would take it below a minimum
threshold it is set back to the initial value. :class:`ReduceOnPlateauWithReset` is exactly that,
for any metric (``mode="max"`` for AUROC and Dice, ``"min"`` for a loss or a distance).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from torch.optim import Optimizer

Mode = Literal["max", "min"]


class ReduceOnPlateauWithReset:
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without gain; reset below ``min_lr``.

    The schedule is kept as an integer level ``k``: the learning rate of each parameter group is
    ``initial_lr * factor**k``, so repeated reductions do not accumulate rounding error and the
    comparison with the floor is exact. With the defaults (``1e-3``, ``factor=0.1``,
    ``patience=10``, ``min_lr=1e-6``) the rates visited are 1e-3, 1e-4, 1e-5, 1e-6 and then 1e-3
    again (1e-7 would be below the floor).

    The best metric is kept across a reset (the reset restarts the rate, not the search for a
    better model), and the epochs-without-gain counter restarts after every change of rate.

    Args:
        optimizer: its parameter groups' current ``lr`` are taken as the initial rates.
        mode: ``"max"`` when larger metrics are better (AUROC, Dice), ``"min"`` otherwise.
        factor: multiplier of a reduction, in (0, 1).
        patience: number of consecutive epochs without improvement that triggers a reduction.
        min_lr: the floor; a reduction that would go below it resets to the initial rate.
        threshold: an epoch improves when it beats the best by more than this (absolute).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
        >>> sched = ReduceOnPlateauWithReset(opt, patience=2)
        >>> [sched.step(m) for m in (0.5, 0.5, 0.5)][-1]
        0.0001
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        mode: Mode = "max",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 1e-6,
        threshold: float = 0.0,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must lie in (0, 1), not {factor}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1, not {patience}")
        self.optimizer = optimizer
        self.mode: Mode = mode
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.threshold = threshold
        self.initial_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        if min(self.initial_lrs) < min_lr:
            raise ValueError(f"initial learning rate {min(self.initial_lrs)} is below min_lr {min_lr}")
        self.level = 0
        self.best: float | None = None
        self.epochs_without_gain = 0
        self.resets = 0

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _improves(self, metric: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return metric > self.best + self.threshold
        return metric < self.best - self.threshold

    def _apply_level(self) -> None:
        for group, initial in zip(self.optimizer.param_groups, self.initial_lrs):
            group["lr"] = initial * self.factor**self.level

    def step(self, metric: float) -> float:
        """Record one epoch's validation metric; return the learning rate for the next epoch.

        A NaN metric counts as an epoch without improvement.
        """
        metric = float(metric)
        if not math.isnan(metric) and self._improves(metric):
            self.best = metric
            self.epochs_without_gain = 0
            return self.lr
        self.epochs_without_gain += 1
        if self.epochs_without_gain >= self.patience:
            self.epochs_without_gain = 0
            self.level += 1
            # Relative tolerance: 1e-3 * 0.1**3 is 1e-6 up to rounding and must not count as below.
            if min(self.initial_lrs) * self.factor**self.level < self.min_lr * (1.0 - 1e-9):
                self.level = 0
                self.resets += 1
            self._apply_level()
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the schedule (the optimizer's own state is saved apart)."""
        return {
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "min_lr": self.min_lr,
            "threshold": self.threshold,
            "initial_lrs": list(self.initial_lrs),
            "level": self.level,
            "best": self.best,
            "epochs_without_gain": self.epochs_without_gain,
            "resets": self.resets,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a schedule saved by :meth:`state_dict` and set the optimizer's rates from it."""
        for key in ("mode", "factor", "patience", "min_lr", "threshold", "level", "best",
                    "epochs_without_gain", "resets"):
            setattr(self, key, state[key])
        self.initial_lrs = [float(lr) for lr in state["initial_lrs"]]
        self._apply_level()


class ConstantLR:
    """A schedule that never changes the rate, with the same interface (for fine-tuning runs)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, metric: float) -> float:  # noqa: ARG002 - same signature as the plateau schedule
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: ARG002
        return None
