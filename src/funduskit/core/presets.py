"""The training presets as data: one table per task, one column per preset.

Each row is a dotted path of ``config.yaml`` (:class:`funduskit.core.config.TrainConfig`) and its
value in each column of :data:`PRESET_NAMES`; a field no row names keeps its dataclass default.
A new preset is a new column. docs/training.md explains the values; docs/decisions.md why.

* ``cpu``: tuned on synthetic data (``benchmarks/training.py``): MobileNetV3-small encoders train
  from random weights several times faster than EfficientNet-B0 on a CPU and reach the targets;
  Adam from scratch instead of the report's fine-tuning / SGD on a frozen backbone.
* ``paper``: the report's networks, sizes, batches, optimizers and schedules.
"""

from __future__ import annotations

import copy
from typing import Any

#: The columns of every table, in order.
PRESET_NAMES: tuple[str, ...] = ("cpu", "paper")

Row = tuple[Any, ...]  # one value per preset, in PRESET_NAMES order

_SEGMENTATION: dict[str, Row] = {
    #                                  cpu                        paper
    "model.name":                     ("disc_cup_segmenter",     "disc_cup_segmenter"),
    "model.kwargs.photo_encoder":     ("mobilenetv3_small_100",  "efficientnet_b4"),
    "model.kwargs.vessel_encoder":    ("mobilenetv3_small_050",  "efficientnet_b0"),
    "model.kwargs.decoder_channels":  ([64, 32, 16],             [256, 128, 64]),
    "loss.name":                      ("bce_dice",               "bce_dice"),
    "loss.kwargs":                    ({"bce_weight": 1.0, "dice_weight": 1.0},) * 2,
    "data.input_size":                (256,                      640),
    "data.preprocessing":             ("standardize",            "standardize"),
    "data.augmentation":              ("light",                  "default"),
    "epochs":                         (5,                        100),
    "batch_size":                     (4,                        4),
    "optimizer.name":                 ("adam",                   "adam"),
    "optimizer.lr":                   (1e-3,                     1e-4),
    "scheduler.name":                 ("plateau_reset",          "plateau_reset"),
    "scheduler.patience":             (3,                        10),
    "scheduler.min_lr":               (1e-5,                     1e-7),
    "runtime.threads":                (2,                        0),
    "runtime.num_workers":            (1,                        4),
}

TABLES: dict[str, dict[str, Row]] = {
    "disc": _SEGMENTATION,
    # the cup is a few pixels across at 256: the cpu preset gives it a larger input than the disc
    "cup": _SEGMENTATION | {
        "data.input_size":            (320,                      640),
        "epochs":                     (8,                        100),
    },
    "fovea": _SEGMENTATION | {
        "model.name":                 ("fovea_localiser",        "fovea_localiser"),
        "model.kwargs.decoder_channels": ([64, 32],              [256, 128]),
        "loss.name":                  ("fovea",                  "fovea"),
        "loss.kwargs":                ({"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "l1",
                                        "gaussian_sigma": 0.0},
                                       {"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "bce",
                                        "gaussian_sigma": 0.0}),
        "epochs":                     (6,                        100),
        "optimizer.lr":               (1e-3,                     1e-5),
        "scheduler.name":             ("plateau_reset",          "constant"),
        "scheduler.patience":         (3,                        10),
        "scheduler.min_lr":           (1e-5,                     1e-6),
    },
    "vessel": {
        "model.name":                 ("vessel_generator",       "vessel_generator"),
        "model.kwargs.base_width":    (8,                        32),
        "model.kwargs.depth":         (4,                        4),
        # + a soft-Dice term on cpu: with the pixel BCE alone the thin vessels took twice the epochs
        "loss.name":                  ("bce_adversarial",        "bce_adversarial"),
        "loss.kwargs.adversarial_weight": (0.1,                  0.1),
        "loss.kwargs.dice_weight":    (1.0,                      0.0),
        "data.input_size":            (384,                      640),
        "data.preprocessing":         ("standardize",            "standardize"),
        "data.augmentation":          ("light",                  "default"),
        "epochs":                     (3,                        100),
        "batch_size":                 (4,                        4),
        "optimizer.name":             ("adam",                   "adam"),
        "optimizer.lr":               (1e-3,                     2e-4),
        "optimizer.betas":            ([0.5, 0.999],             [0.5, 0.999]),
        "scheduler.name":             ("constant",               "constant"),
        "runtime.threads":            (2,                        0),
        "runtime.num_workers":        (1,                        4),
        # NCHW for the paper U-Net: with BatchNorm it runs about 2x slower in channels_last on CPU
        "runtime.channels_last":      (True,                     False),
        "discriminator.name":         ("vessel_discriminator",   "vessel_discriminator"),
        "discriminator.kwargs.base_width": (8,                   32),
        "discriminator.kwargs.output": ("image",                 "image"),
        "discriminator_optimizer.name": ("adam",                 "adam"),
        "discriminator_optimizer.lr": (1e-3,                     2e-4),
        "discriminator_optimizer.betas": ([0.5, 0.999],          [0.5, 0.999]),
    },
    "glaucoma": {
        "model.name":                 ("glaucoma_classifier",    "glaucoma_classifier"),
        "model.kwargs.backbone":      ("mobilenetv3_small_100",  "efficientnet_b0"),
        "model.kwargs.pool_size":     (4,                        4),
        "loss.name":                  ("bce",                    "bce"),
        "data.input_size":            (320,                      1024),
        "data.preprocessing":         ("normalize",              "normalize"),
        "data.augmentation":          ("light",                  "default"),
        "epochs":                     (20,                       100),
        "batch_size":                 (16,                       64),
        "optimizer.name":             ("adam",                   "sgd"),
        "optimizer.lr":               (1e-3,                     1e-3),
        "optimizer.momentum":         (0.9,                      0.9),
        "scheduler.name":             ("plateau_reset",          "plateau_reset"),
        "scheduler.factor":           (0.1,                      0.1),
        "scheduler.patience":         (4,                        10),
        "scheduler.min_lr":           (1e-5,                     1e-6),
        "runtime.threads":            (2,                        0),
        "runtime.num_workers":        (1,                        8),
    },
}


def preset_fields(task: str, name: str) -> dict[str, Any]:
    """The nested ``config.yaml`` form of column ``name`` of ``task``'s table (a fresh copy).

    Raises:
        KeyError: unknown task; ValueError: unknown preset.
    """
    column = PRESET_NAMES.index(name)
    nested: dict[str, Any] = {"task": task, "preset": name}
    for dotted, row in TABLES[task].items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(row[column])
    return nested
