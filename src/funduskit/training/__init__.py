"""Training: losses, the report's LR schedule, k-fold splits, atomic checkpoints and one loop.

Example::

    from funduskit.config import preset, override
    from funduskit.datasets import read_dataset
    from funduskit.training import fit

    config = override(preset("disc", "cpu"), {"data.fold": 1, "epochs": 5})
    result = fit(config, read_dataset("synthetic"), "runs/disc-fold1")
    print(result.best_metric, result.best_epoch)

See ``docs/training.md`` for the presets, the run directory and the choices made where the
report is silent.
"""

from __future__ import annotations

import lazy_loader

# Submodules are imported on first use (SPEC 1 lazy loading): `funduskit.training.runtime`,
# which prediction needs, does not load the training loop, the data sets and albumentations.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "builders": ["build_model", "load_trained_model"],
        "checkpoint": ["load_checkpoint", "save_checkpoint"],
        "loop": ["TrainResult", "evaluate_checkpoint", "fit", "resume_config"],
        "scheduler": ["ReduceOnPlateauWithReset"],
        "splits": ["Split", "make_split", "read_split", "write_split"],
        "tasks": ["get_task"],
    },
)
