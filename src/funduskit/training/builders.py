"""Optimizers and learning-rate schedules built from a configuration (the networks themselves:
:mod:`funduskit.runs.networks`)."""

from __future__ import annotations

import torch
from torch import nn

from funduskit.core.config import OptimizerConfig, TrainConfig
from funduskit.core.errors import FunduskitError
from funduskit.training.scheduler import ConstantLR, ReduceOnPlateauWithReset


def build_optimizer(parameters: list[nn.Parameter], config: OptimizerConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over the parameters that require gradients."""
    trainable = [p for p in parameters if p.requires_grad]
    if not trainable:
        raise FunduskitError("the network has no trainable parameter")
    name = config.name.lower()
    if name == "sgd":
        return torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    if name in ("adam", "adamw"):
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return kind(trainable, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    raise FunduskitError(f"unknown optimizer {config.name!r}; choose sgd, adam or adamw")


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, mode: str) -> ReduceOnPlateauWithReset | ConstantLR:
    """The schedule of ``config.scheduler`` on the task's validation metric (``mode`` max or min)."""
    spec = config.scheduler
    if spec.name == "constant":
        return ConstantLR(optimizer)
    if spec.name == "plateau_reset":
        return ReduceOnPlateauWithReset(optimizer, mode=mode, factor=spec.factor, patience=spec.patience,  # type: ignore[arg-type]
                                        min_lr=spec.min_lr, threshold=spec.threshold)
    raise FunduskitError(f"unknown scheduler {spec.name!r}; choose plateau_reset or constant")
