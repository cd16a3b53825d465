"""The five tasks of the report, the one list every stage names them by."""

from __future__ import annotations

#: In the order they are trained and predicted: the vessel model first, the others read its maps.
TASKS: tuple[str, ...] = ("vessel", "disc", "cup", "fovea", "glaucoma")
#: The tasks whose networks segment the optic disc and cup.
SEGMENTATION_TASKS: tuple[str, ...] = ("disc", "cup")
