"""The five tasks of the report, the one list every stage names them by."""

from __future__ import annotations

#: In the order they are trained and predicted: the vessel model first, the others read its maps.
TASKS: tuple[str, ...] = ("vessel", "disc", "cup", "fovea", "glaucoma")
#: The tasks whose networks segment the optic disc and cup.
SEGMENTATION_TASKS: tuple[str, ...] = ("disc", "cup")

#: Each task's validation metric in ``metrics.csv`` and whether larger is better (``"max"``).
VALIDATION_METRICS: dict[str, tuple[str, str]] = {
    "vessel": ("val_dice", "max"),
    "disc": ("val_dice", "max"),
    "cup": ("val_dice", "max"),
    "fovea": ("val_error_pct", "min"),
    "glaucoma": ("val_auroc", "max"),
}
