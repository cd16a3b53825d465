"""Scoring a network on cached items: the validation of every epoch and the score of a trained
checkpoint on other samples (e.g. a held-out set)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from funduskit.core.config import config_from_dict
from funduskit.data.sample import Sample
from funduskit.runs import checkpoint as ckpt
from funduskit.runs.layout import checkpoint_file
from funduskit.runs.networks import load_trained_model
from funduskit.runtime.device import Runtime
from funduskit.training.data import AugmentedDataset, CachedItem, EpochBatchSampler
from funduskit.training.distributed import DistributedContext
from funduskit.training.items import build_items, usable_samples
from funduskit.training.losses import build_loss
from funduskit.training.tasks import Parts, Task, get_task


def predict_loader(task: Task, parts: Parts, loader: DataLoader) -> tuple[list[torch.Tensor], dict[str, float]]:
    """Probabilities of every item of ``loader`` (in order) and the size-weighted mean losses (``val_*``)."""
    for model in parts.models.values():
        model.eval()
    probabilities: list[torch.Tensor] = []
    losses: list[dict[str, float]] = []
    sizes: list[int] = []
    for batch in loader:
        batch_probabilities, batch_losses = task.predict_batch(parts, batch)
        probabilities.extend(batch_probabilities)
        losses.append(batch_losses)
        sizes.append(len(batch_probabilities))
    weights = np.asarray(sizes, dtype=float) / max(1, sum(sizes))
    mean_losses = {f"val_{key}": float(sum(w * loss[key] for w, loss in zip(weights, losses))) for key in losses[0]}
    return probabilities, mean_losses


def validate(task: Task, parts: Parts, loader: DataLoader | None, items: Sequence[CachedItem],
             context: DistributedContext = DistributedContext()) -> dict[str, float]:
    """Validation losses (``val_*``, size-weighted means) and the task's metrics over ``loader``
    (no augmentation).

    In a multi-process run each process's ``loader`` holds its contiguous share of ``items``
    (:meth:`DistributedContext.shard`; None: an empty share): the shares' probabilities are
    gathered, so every process scores all of ``items`` and gets the same record."""
    probabilities, losses = predict_loader(task, parts, loader) if loader is not None else ([], {})
    shares = context.gather((probabilities, losses, len(probabilities)))
    every = [probability for share, _, _ in shares for probability in share]
    total = max(1, sum(size for _, _, size in shares))
    keys = next((share_losses for _, share_losses, size in shares if size), {})
    record = {key: float(sum(share_losses[key] * size for _, share_losses, size in shares if size) / total)
              for key in keys}
    record.update(task.score(every, items, parts.extra))
    return record


def evaluate_checkpoint(checkpoint: str | Path, samples: Sequence[Sample], *, threads: int = 1,
                        show_progress: bool = False, original_size: bool = False,
                        overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """The task's validation metrics of a trained checkpoint on other samples (e.g. a held-out set).

    Args:
        checkpoint: a checkpoint file or a run directory (its ``best.pt``).
        samples: the images to score; those without the task's labels are left out.
        threads: threads decoding the images.
        original_size: segmentation tasks also give ``dice_original_size``, the Dice of the
            probability map mapped back to each photograph's own size (thresholded at 0.5).
        overrides: changes to the run's data configuration, e.g. ``{"vessel_model": "runs/vessel"}``
            to feed a vessel generator's maps to a disc model trained on reference vessel masks.
    """
    config = config_from_dict(ckpt.load_checkpoint(checkpoint_file(checkpoint))["config"])
    for key, value in (overrides or {}).items():
        setattr(config.data, key, value)
    task = get_task(config.task)
    runtime = Runtime(device=torch.device("cpu"), precision="fp32", channels_last=config.runtime.channels_last,
                      threads=torch.get_num_threads())
    models = {role: runtime.prepare(load_trained_model(checkpoint, role)[0]) for role in task.model_names(config)}
    parts = Parts(models=models, optimizers={}, loss=build_loss(config.loss.name, **config.loss.kwargs),
                  runtime=runtime, config=config,
                  extra={"output_reduction": getattr(models["model"], "output_reduction", 1)})
    usable = usable_samples(task, samples)
    items = build_items(task, config, usable, threads=threads, show_progress=show_progress,
                        description=f"Caching {len(usable)} images")
    dataset = AugmentedDataset(items, preprocessing=config.data.preprocessing,
                               to_tensors=lambda item, arrays: task.to_tensors(item, arrays, parts.extra))
    sampler = EpochBatchSampler(len(dataset), config.validation_batch_size or config.batch_size, seed=0, shuffle=False)
    probabilities, record = predict_loader(task, parts, DataLoader(dataset, batch_sampler=sampler, num_workers=0))
    record.update(task.score(probabilities, items, parts.extra))
    if original_size and hasattr(task, "score_at_original_size"):
        record.update(task.score_at_original_size(probabilities, items, usable))
    return record
