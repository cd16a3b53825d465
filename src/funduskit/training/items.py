"""What a training run learns from: the task's samples decoded, letterboxed to the network size
and cached with their targets and their vessel-map input (reference masks or a trained vessel
generator's maps)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from funduskit.core.config import TrainConfig
from funduskit.core.errors import FunduskitError
from funduskit.data.sample import VIEWS, Sample
from funduskit.runs.networks import load_trained_model
from funduskit.training.data import CachedItem, cache_samples, soft_to_network
from funduskit.training.tasks import Task
from funduskit.transforms.preprocess import Geometry


def usable_samples(task: Task, samples: Sequence[Sample], *, where: str = "the data set") -> list[Sample]:
    """The samples carrying the task's labels; a clear error when there are none."""
    usable = [sample for sample in samples if task.usable(sample)]
    if not usable:
        raise FunduskitError(
            f"{where} has no {task.needs}, which the {task.name!r} task trains on "
            f"({len(samples)} image(s) read, none labelled); choose a data set that has them"
        )
    return usable


def vessel_input_mode(config: TrainConfig, task: Task) -> str:
    """``"ground_truth"``, ``"model"`` or ``"none"``: where the vessel-map input comes from."""
    if not task.uses_vessel_input:
        return "none"
    mode = config.data.vessel_input
    if mode == "auto":
        return "model" if config.data.vessel_model else "ground_truth"
    if mode not in ("ground_truth", "model", "none"):
        raise FunduskitError(f"data.vessel_input must be auto, ground_truth, model or none, not {mode!r}")
    if mode == "model" and not config.data.vessel_model:
        raise FunduskitError("data.vessel_input is 'model' but no data.vessel_model checkpoint is given")
    return mode


def build_items(task: Task, config: TrainConfig, samples: Sequence[Sample], *, threads: int,
                show_progress: bool, description: str) -> list[CachedItem]:
    """Decode, letterbox and cache ``samples`` with their targets and vessel-map input."""
    from funduskit.data.datasets import load_vessel_mask
    from funduskit.data.io import load_image

    size = config.data.input_size
    mode = vessel_input_mode(config, task)
    if mode == "ground_truth":
        lacking = [sample.image_id for sample in samples if sample.vessel_mask_path is None]
        if lacking:
            raise FunduskitError(
                f"the {task.name!r} network takes a vessel map as input, and {len(lacking)} image(s) have no "
                f"vessel mask (e.g. {lacking[0]}); train a vessel model first and set data.vessel_model to its run"
            )
    vessel_size = 0
    if mode == "model":
        vessel_model, vessel_config = load_trained_model(config.data.vessel_model)  # type: ignore[arg-type]
        vessel_size = config.data.vessel_model_size or vessel_config.data.input_size

    view = config.data.view
    if view not in VIEWS:
        raise FunduskitError(f"data.view must be one of {', '.join(VIEWS)}, not {view!r}")

    def cache_one(sample: Sample) -> CachedItem:
        image = load_image(sample.image_path)
        box = task.disc_box(sample) if view == "disc" and _view_of(sample, image) == "whole" else None
        if box is not None:
            image = box.cut(image)
        geometry = Geometry.for_image(image, size)
        item = CachedItem(image=geometry.to_network(image), geometry=geometry, box=box,
                          **task.targets(sample, geometry, box))
        if mode == "ground_truth":
            vessel_mask = load_vessel_mask(sample)
            item.vessels = soft_to_network(vessel_mask if box is None else box.cut(vessel_mask), geometry)
        elif mode == "none" and task.uses_vessel_input:
            item.vessels = np.zeros((size, size), dtype=np.uint8)
        elif mode == "model":
            item.vessel_photo = Geometry.for_image(image, vessel_size).to_network(image)
        return item

    items = cache_samples(samples, cache_one, threads=threads, description=description, show_progress=show_progress)
    if mode == "model":
        attach_vessel_maps(items, vessel_model, vessel_config, size)
    return items


def _view_of(sample: Sample, image: np.ndarray) -> str:
    """The sample's view: what its layout says, else what the photograph shows (dark corners)."""
    from funduskit.data.view import detect_view

    return sample.view or detect_view(image).view


def attach_vessel_maps(items: Sequence[CachedItem], model: torch.nn.Module, vessel_config: TrainConfig,
                       size: int, batch_size: int = 4) -> None:
    """Run a trained vessel generator on each item's ``vessel_photo`` and store the map at ``size``."""
    from funduskit.models.maps import resize_maps
    from funduskit.transforms.preprocess import preprocess

    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        photos = np.stack([preprocess(item.vessel_photo, vessel_config.data.preprocessing) for item in chunk])
        probabilities = resize_maps(model.predict(torch.from_numpy(photos.transpose(0, 3, 1, 2))), size)
        for item, probability in zip(chunk, probabilities[:, 0].numpy()):
            item.vessels = np.clip(probability * 255 + 0.5, 0, 255).astype(np.uint8)  # as prediction resizes it
            item.vessel_photo = None
