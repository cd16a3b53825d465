"""One small adapter per task: which samples it can use, what it caches, its tensors, its step
and its validation metric. The loop (:mod:`funduskit.training.loop`) is the same for all.

==========  ==================  ======================  =========================  ============
task        labels needed       input (C, S, S)         target                     metric
==========  ==================  ======================  =========================  ============
vessel      vessel masks        standardised photo (3)  (1, S, S) vessel mask      Dice (max)
disc, cup   disc/cup masks      photo ++ vessel map (4) (1, S, S) disc / cup mask  Dice (max)
fovea       fovea positions     photo ++ vessel map (4) (3, S/8, S/8) cell maps    error, % of width (min)
glaucoma    glaucoma labels     photo, /255 or ZLM (3)  () label                   AUROC (max)
==========  ==================  ======================  =========================  ============
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from funduskit.core.config import TrainConfig
from funduskit.core.errors import FunduskitError
from funduskit.core.tasks import VALIDATION_METRICS
from funduskit.data.sample import Sample
from funduskit.data.view import CropBox
from funduskit.runtime.device import Runtime
from funduskit.training.data import CachedItem, binary_to_network
from funduskit.training.distributed import unwrap
from funduskit.training.losses import discriminator_loss
from funduskit.transforms.preprocess import Geometry

Batch = dict[str, Tensor]


@dataclass
class Parts:
    """What a step works on: the networks, their optimizers, the loss and the runtime."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    loss: nn.Module
    runtime: Runtime
    config: TrainConfig
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base adapter; subclasses set the class attributes and the methods that differ."""

    name: str = ""
    needs: str = ""  # the labels, in words, for error messages
    metric: str = ""  # key of the validation metric in the epoch record
    mode: Literal["max", "min"] = "max"
    uses_vessel_input: bool = False

    # -- data ------------------------------------------------------------------------------
    def usable(self, sample: Sample) -> bool:
        """Whether ``sample`` carries the labels this task trains on."""
        raise NotImplementedError

    def targets(self, sample: Sample, geometry: Geometry, box: CropBox | None = None) -> dict[str, Any]:
        """The :class:`CachedItem` fields holding the sample's targets at the network size;
        ``box``: the photograph was cut to this disc crop first (``data.view: disc``)."""
        raise NotImplementedError

    def disc_box(self, sample: Sample) -> CropBox:
        """The disc crop of a whole photograph, from its reference disc mask (``data.view: disc``)."""
        from funduskit.data.datasets import load_disc_cup_mask

        box = CropBox.around(load_disc_cup_mask(sample) < 255) if sample.disc_cup_mask_path else None
        if box is None:
            raise FunduskitError(
                f"{sample.image_path}: the {self.name!r} network is trained on disc crops (data.view: disc), and "
                "this whole photograph has no disc mask to cut the crop around; give disc masks or crops"
            )
        return box

    def to_tensors(self, item: CachedItem, arrays: dict[str, Any], parts_info: dict[str, Any]) -> Batch:
        """Augmented arrays (``image`` already preprocessed, float32 (S, S, 3)) -> ``input``, ``target``."""
        raise NotImplementedError

    # -- networks --------------------------------------------------------------------------
    def model_names(self, config: TrainConfig) -> list[str]:
        """Names of the networks a run trains (``"model"``, plus ``"discriminator"`` for the GAN)."""
        return ["model"]

    # -- steps -----------------------------------------------------------------------------
    def train_step(self, parts: Parts, batch: Batch) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the loss parts as floats."""
        model, optimizer = parts.models["model"], parts.optimizers["model"]
        inputs = parts.runtime.to_device(batch["input"])
        target = batch["target"].to(parts.runtime.device)
        with parts.runtime.autocast():
            logits = model(inputs)
        losses = parts.loss(logits, target)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return {key: float(value.detach()) for key, value in losses.items()}

    def predict_batch(self, parts: Parts, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """Probabilities of the main network (eval mode, no gradients) and the batch's loss parts."""
        model = parts.models["model"]
        inputs = parts.runtime.to_device(batch["input"])
        target = batch["target"].to(parts.runtime.device)
        with torch.inference_mode(), parts.runtime.autocast():
            logits = model(inputs)
        losses = parts.loss(logits.float(), target)
        probabilities = torch.sigmoid(logits.float()).cpu()
        return probabilities, {key: float(value) for key, value in losses.items()}

    def score(self, probabilities: list[Tensor], items: Sequence[CachedItem], parts_info: dict[str, Any]) -> dict[str, float]:
        """Validation metrics from per-item probabilities (in ``items`` order)."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------
# Segmentation tasks: disc, cup, vessels
# ------------------------------------------------------------------------------------------

def mean_dice(probabilities: Sequence[Tensor], references: Sequence[np.ndarray], threshold: float = 0.5) -> float:
    """Mean over images of the Dice of ``probability >= threshold`` and a 0/1 reference (same shape).

    Both empty counts as 1 (the official REFUGE convention, ``funduskit.scoring.metrics.dice``).
    """
    from funduskit.scoring.metrics import dice

    scores = [dice(p.squeeze().numpy() >= threshold, r.astype(bool)) for p, r in zip(probabilities, references)]
    return float(np.mean(scores)) if scores else float("nan")


class _SegmentationTask(Task):
    metric, mode = VALIDATION_METRICS["disc"]

    def to_tensors(self, item: CachedItem, arrays: dict[str, Any], parts_info: dict[str, Any]) -> Batch:
        photo = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(2, 0, 1)))
        target = torch.from_numpy(arrays["mask"].astype(np.float32))[None]
        if self.uses_vessel_input:
            vessels = torch.from_numpy(arrays["vessels"].astype(np.float32) * (1 / 255))[None]
            photo = torch.cat([photo, vessels], dim=0)
        return {"input": photo, "target": target}

    def score(self, probabilities: list[Tensor], items: Sequence[CachedItem], parts_info: dict[str, Any]) -> dict[str, float]:
        return {"val_dice": mean_dice(probabilities, [item.mask for item in items])}

    def reference(self, sample: Sample) -> np.ndarray:
        """(H, W) bool reference at the original size."""
        raise NotImplementedError

    def reference_in(self, sample: Sample, box: CropBox | None) -> np.ndarray:
        """The reference, cut to ``box`` when there is one."""
        reference = self.reference(sample)
        return reference if box is None else box.cut(reference)

    def targets(self, sample: Sample, geometry: Geometry, box: CropBox | None = None) -> dict[str, Any]:
        return {"mask": binary_to_network(self.reference_in(sample, box), geometry)}

    def score_at_original_size(self, probabilities: list[Tensor], items: Sequence[CachedItem],
                               samples: Sequence[Sample]) -> dict[str, float]:
        """Dice after mapping each probability map back to the photograph's own size."""
        from funduskit.scoring.metrics import dice

        scores = [
            dice(item.geometry.map_to_original(p.squeeze().numpy()) >= 0.5, self.reference_in(sample, item.box))
            for p, item, sample in zip(probabilities, items, samples)
        ]
        return {"dice_original_size": float(np.mean(scores))}


class DiscCupTask(_SegmentationTask):
    """Disc or cup segmentation (one network per structure, as in the report)."""

    uses_vessel_input = True

    def __init__(self, structure: Literal["disc", "cup"]):
        self.name = structure
        self.structure = structure
        self.needs = "optic disc/cup masks" if structure == "disc" else "optic cup masks (disc-only masks do not do)"

    def usable(self, sample: Sample) -> bool:
        from funduskit.data.datasets import has_cup_annotation

        if sample.disc_cup_mask_path is None:
            return False
        return self.structure == "disc" or has_cup_annotation(sample)

    def reference(self, sample: Sample) -> np.ndarray:
        """(H, W) bool reference of the structure at the original size (disc = mask < 255, cup = mask == 0)."""
        from funduskit.data.datasets import load_disc_cup_mask

        mask = load_disc_cup_mask(sample)
        return mask < 255 if self.structure == "disc" else mask == 0


class VesselTask(_SegmentationTask):
    """Vessel segmentation trained as a GAN (Son et al. 2019)."""

    name = "vessel"
    needs = "vessel masks"

    def usable(self, sample: Sample) -> bool:
        return sample.vessel_mask_path is not None

    def reference(self, sample: Sample) -> np.ndarray:
        from funduskit.data.datasets import load_vessel_mask

        return load_vessel_mask(sample)

    def model_names(self, config: TrainConfig) -> list[str]:
        return ["model", "discriminator"] if config.discriminator is not None else ["model"]

    def train_step(self, parts: Parts, batch: Batch) -> dict[str, float]:
        if "discriminator" not in parts.models:
            return super().train_step(parts, batch)
        generator, discriminator = parts.models["model"], parts.models["discriminator"]
        g_optimizer, d_optimizer = parts.optimizers["model"], parts.optimizers["discriminator"]
        photo = parts.runtime.to_device(batch["input"])
        target = parts.runtime.to_device(batch["target"])
        autocast = parts.runtime.autocast
        with autocast():
            logits = generator(photo)
        # Discriminator: (photo, reference) is real, (photo, generated map) is fake.
        generated = torch.sigmoid(logits.float()).to(photo.dtype)
        with autocast():
            real_scores = discriminator(torch.cat([photo, target.to(photo.dtype)], dim=1))
            fake_scores = discriminator(torch.cat([photo, generated.detach()], dim=1))
        d_loss = discriminator_loss(real_scores, fake_scores)
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        # Generator: pixel-wise BCE + weighted adversarial term, discriminator held fixed (called
        # outside its DistributedDataParallel wrapper, which would wait for gradients it never gets).
        fixed_discriminator = unwrap(discriminator)
        fixed_discriminator.requires_grad_(False)
        try:
            with autocast():
                fake_scores = fixed_discriminator(torch.cat([photo, generated], dim=1))
            losses = parts.loss(logits, target, fake_scores)
            g_optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            g_optimizer.step()
        finally:
            fixed_discriminator.requires_grad_(True)
        result = {key: float(value.detach()) for key, value in losses.items()}
        result["discriminator"] = float(d_loss.detach())
        return result


# ------------------------------------------------------------------------------------------
# Fovea
# ------------------------------------------------------------------------------------------

class FoveaTask(Task):
    """Fovea localisation: confidence map + in-cell offsets on an (S/8, S/8) grid."""

    name = "fovea"
    needs = "fovea positions"
    metric, mode = VALIDATION_METRICS["fovea"]
    uses_vessel_input = True

    def usable(self, sample: Sample) -> bool:
        return sample.fovea is not None

    def targets(self, sample: Sample, geometry: Geometry, box: CropBox | None = None) -> dict[str, Any]:
        if box is not None:
            raise FunduskitError("the fovea lies outside disc crops: train the fovea network on whole photographs")
        return {"fovea": tuple(float(v) for v in geometry.points_to_network(sample.fovea)),
                "original_fovea": tuple(sample.fovea)}  # type: ignore[arg-type]

    def to_tensors(self, item: CachedItem, arrays: dict[str, Any], parts_info: dict[str, Any]) -> Batch:
        from funduskit.models import encode_fovea_target

        size = item.geometry.size
        photo = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(2, 0, 1)))
        vessels = torch.from_numpy(arrays["vessels"].astype(np.float32) * (1 / 255))[None]
        target = encode_fovea_target(arrays["fovea"], size, size // parts_info["output_reduction"])
        return {"input": torch.cat([photo, vessels], dim=0), "target": torch.from_numpy(target)}

    def score(self, probabilities: list[Tensor], items: Sequence[CachedItem], parts_info: dict[str, Any]) -> dict[str, float]:
        from funduskit.models import decode_fovea

        errors_px, errors_pct = [], []
        for maps, item in zip(probabilities, items):
            predicted = item.geometry.points_to_original(decode_fovea(maps, item.geometry.size))
            error = float(np.hypot(*(predicted - np.asarray(item.original_fovea))))
            errors_px.append(error)
            errors_pct.append(100.0 * error / item.geometry.width)
        return {"val_error_pct": float(np.mean(errors_pct)), "val_error_px": float(np.mean(errors_px))}


# ------------------------------------------------------------------------------------------
# Glaucoma
# ------------------------------------------------------------------------------------------

class GlaucomaTask(Task):
    """Glaucoma classification: one probability per photograph."""

    name = "glaucoma"
    needs = "glaucoma labels"
    metric, mode = VALIDATION_METRICS["glaucoma"]

    def usable(self, sample: Sample) -> bool:
        return sample.label is not None

    def targets(self, sample: Sample, geometry: Geometry, box: CropBox | None = None) -> dict[str, Any]:
        return {"label": int(sample.label)}  # type: ignore[arg-type]

    def to_tensors(self, item: CachedItem, arrays: dict[str, Any], parts_info: dict[str, Any]) -> Batch:
        photo = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(2, 0, 1)))
        return {"input": photo, "target": torch.tensor(float(item.label))}

    def score(self, probabilities: list[Tensor], items: Sequence[CachedItem], parts_info: dict[str, Any]) -> dict[str, float]:
        from funduskit.scoring.metrics import auroc

        labels = [item.label for item in items]
        scores = [float(p) for p in probabilities]
        return {"val_auroc": float(auroc(labels, scores)) if len(set(labels)) == 2 else float("nan")}


TASK_FACTORIES: dict[str, Callable[[], Task]] = {
    "vessel": VesselTask,
    "disc": lambda: DiscCupTask("disc"),
    "cup": lambda: DiscCupTask("cup"),
    "fovea": FoveaTask,
    "glaucoma": GlaucomaTask,
}


def get_task(name: str) -> Task:
    """The adapter of task ``name``."""
    if name not in TASK_FACTORIES:
        raise FunduskitError(f"unknown task {name!r}; choose one of {', '.join(TASK_FACTORIES)}")
    return TASK_FACTORIES[name]()
