"""The training presets as data: one table per task, one column per preset.

Each row is a dotted path of ``config.yaml`` (:class:`funduskit.core.config.TrainConfig`) and its
value in each column of :data:`PRESET_NAMES`; a field no row names keeps its dataclass default.
A new preset is a new column. docs/training.md explains the values; docs/decisions.md why.

* ``cpu``: tuned on synthetic data (``benchmarks/training.py``): MobileNetV3-small encoders train
  from random weights several times faster than EfficientNet-B0 on a CPU and reach the targets;
  Adam from scratch instead of the report's fine-tuning / SGD on a frozen backbone.
* ``paper``: the report's networks, sizes, batches, optimizers and schedules.
* ``real``: recipes that learn from tens to hundreds of real photographs on two CPU cores
  (``benchmarks/real_data.py``, docs/real-data.md): ImageNet EfficientNet-Lite0 encoders (the
  ``lite`` preprocessing they were trained with), disc, cup and glaucoma networks on disc-centred
  crops (``data.view: disc``; whole photographs go through the two-stage path), vessels at
  DRIVE's own resolution.
"""

from __future__ import annotations

import copy
from typing import Any

#: The columns of every table, in order.
PRESET_NAMES: tuple[str, ...] = ("cpu", "paper", "real")

Row = tuple[Any, ...]  # one value per preset, in PRESET_NAMES order

_SEGMENTATION: dict[str, Row] = {
    #                                  cpu                        paper                      real
    "model.name":                     ("disc_cup_segmenter",     "disc_cup_segmenter",      "disc_cup_segmenter"),
    "model.kwargs.photo_encoder":     ("mobilenetv3_small_100",  "efficientnet_b4",         "tf_efficientnet_lite0"),
    # real: no vessel branch on crops (an all-zero channel gave its BatchNorms non-finite gradients)
    "model.kwargs.vessel_encoder":    ("mobilenetv3_small_050",  "efficientnet_b0",         None),
    "model.kwargs.decoder_channels":  ([64, 32, 16],             [256, 128, 64],            [96, 48, 24]),
    "init.encoder_weights":           (None,                     None,                      "lite0"),
    "loss.name":                      ("bce_dice",               "bce_dice",                "bce_dice"),
    "loss.kwargs":                    ({"bce_weight": 1.0, "dice_weight": 1.0},) * 3,
    "data.input_size":                (256,                      640,                       256),
    "data.preprocessing":             ("standardize",            "standardize",             "lite"),
    "data.augmentation":              ("light",                  "default",                 "default"),
    "data.view":                      ("whole",                  "whole",                   "disc"),
    "data.vessel_input":              ("auto",                   "auto",                    "none"),
    "epochs":                         (5,                        100,                       30),
    "batch_size":                     (4,                        4,                         8),
    "optimizer.name":                 ("adam",                   "adam",                    "adam"),
    "optimizer.lr":                   (1e-3,                     1e-4,                      5e-4),
    "scheduler.name":                 ("plateau_reset",          "plateau_reset",           "plateau_reset"),
    "scheduler.patience":             (3,                        10,                        4),
    "scheduler.min_lr":               (1e-5,                     1e-7,                      1e-5),
    "runtime.threads":                (2,                        0,                         2),
    "runtime.num_workers":            (1,                        4,                         1),
}

TABLES: dict[str, dict[str, Row]] = {
    "disc": _SEGMENTATION,
    # the cup is a few pixels across at 256: the cpu preset gives it a larger input than the disc
    "cup": _SEGMENTATION | {
        "data.input_size":            (320,                      640,                       256),
        "epochs":                     (8,                        100,                       30),
    },
    # no real fovea labels: the real column is the cpu recipe with the pretrained photo encoder
    "fovea": _SEGMENTATION | {
        "model.name":                 ("fovea_localiser",        "fovea_localiser",         "fovea_localiser"),
        "model.kwargs.decoder_channels": ([64, 32],              [256, 128],                [64, 32]),
        "loss.name":                  ("fovea",                  "fovea",                   "fovea"),
        "loss.kwargs":                ({"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "l1",
                                        "gaussian_sigma": 0.0},
                                       {"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "bce",
                                        "gaussian_sigma": 0.0},
                                       {"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "l1",
                                        "gaussian_sigma": 0.0}),
        "data.input_size":            (256,                      640,                       320),
        "model.kwargs.vessel_encoder": ("mobilenetv3_small_050", "efficientnet_b0",         "mobilenetv3_small_050"),
        "data.view":                  ("whole",                  "whole",                   "whole"),
        "data.vessel_input":          ("auto",                   "auto",                    "auto"),
        "epochs":                     (6,                        100,                       12),
        "batch_size":                 (4,                        4,                         4),
        "optimizer.lr":               (1e-3,                     1e-5,                      1e-3),
        "scheduler.name":             ("plateau_reset",          "constant",                "plateau_reset"),
        "scheduler.patience":         (3,                        10,                        3),
        "scheduler.min_lr":           (1e-5,                     1e-6,                      1e-5),
    },
    "vessel": {
        "model.name":                 ("vessel_generator",       "vessel_generator",        "vessel_generator"),
        "model.kwargs.base_width":    (8,                        32,                        16),
        "model.kwargs.depth":         (4,                        4,                         4),
        # + a soft-Dice term on cpu: with the pixel BCE alone the thin vessels took twice the epochs
        "loss.name":                  ("bce_adversarial",        "bce_adversarial",         "bce_adversarial"),
        "loss.kwargs.adversarial_weight": (0.1,                  0.1,                       0.1),
        "loss.kwargs.dice_weight":    (1.0,                      0.0,                       1.0),
        # real: DRIVE's own size (565 x 584), where its vessels are 1-2 px wide; other cameras are
        # brought to the same field-of-view scale by the letterbox
        "data.input_size":            (384,                      640,                       576),
        "data.preprocessing":         ("standardize",            "standardize",             "standardize"),
        "data.augmentation":          ("light",                  "default",                 "default"),
        "epochs":                     (3,                        100,                       40),
        "batch_size":                 (4,                        4,                         2),
        "optimizer.name":             ("adam",                   "adam",                    "adam"),
        "optimizer.lr":               (1e-3,                     2e-4,                      1e-3),
        "optimizer.betas":            ([0.5, 0.999],             [0.5, 0.999],              [0.5, 0.999]),
        "scheduler.name":             ("constant",               "constant",                "plateau_reset"),
        "scheduler.patience":         (10,                       10,                        5),
        "scheduler.min_lr":           (1e-6,                     1e-6,                      1e-5),
        "runtime.threads":            (2,                        0,                         2),
        "runtime.num_workers":        (1,                        4,                         1),
        # NCHW for the paper U-Net: with BatchNorm it runs about 2x slower in channels_last on CPU
        "runtime.channels_last":      (True,                     False,                     True),
        "discriminator.name":         ("vessel_discriminator",   "vessel_discriminator",    "vessel_discriminator"),
        "discriminator.kwargs.base_width": (8,                   32,                        8),
        "discriminator.kwargs.output": ("image",                 "image",                   "image"),
        "discriminator_optimizer.name": ("adam",                 "adam",                    "adam"),
        "discriminator_optimizer.lr": (1e-3,                     2e-4,                      1e-3),
        "discriminator_optimizer.betas": ([0.5, 0.999],          [0.5, 0.999],              [0.5, 0.999]),
    },
    "glaucoma": {
        "model.name":                 ("glaucoma_classifier",    "glaucoma_classifier",     "glaucoma_classifier"),
        "model.kwargs.backbone":      ("mobilenetv3_small_100",  "efficientnet_b0",         "tf_efficientnet_lite0"),
        "model.kwargs.pool_size":     (4,                        4,                         4),
        "init.encoder_weights":       (None,                     None,                      "lite0"),
        "loss.name":                  ("bce",                    "bce",                     "bce"),
        "data.input_size":            (320,                      1024,                      256),
        "data.preprocessing":         ("normalize",              "normalize",               "lite"),
        "data.augmentation":          ("light",                  "default",                 "default"),
        "data.view":                  ("whole",                  "whole",                   "disc"),
        "epochs":                     (20,                       100,                       15),
        "batch_size":                 (16,                       64,                        16),
        "optimizer.name":             ("adam",                   "sgd",                     "adam"),
        "optimizer.lr":               (1e-3,                     1e-3,                      3e-4),
        "optimizer.momentum":         (0.9,                      0.9,                       0.9),
        "scheduler.name":             ("plateau_reset",          "plateau_reset",           "plateau_reset"),
        "scheduler.factor":           (0.1,                      0.1,                       0.1),
        "scheduler.patience":         (4,                        10,                        3),
        "scheduler.min_lr":           (1e-5,                     1e-6,                      1e-6),
        "runtime.threads":            (2,                        0,                         2),
        "runtime.num_workers":        (1,                        8,                         1),
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
