"""Training: losses, the report's LR schedule, k-fold splits, atomic checkpoints and one loop.

Example::

    from funduskit.core.config import preset, override
    from funduskit.data.datasets import read_dataset
    from funduskit.training import fit

    config = override(preset("disc", "cpu"), {"data.fold": 1, "epochs": 5})
    result = fit(config, read_dataset("synthetic"), "runs/disc-fold1")
    print(result.best_metric, result.best_epoch)

See ``docs/training.md`` for the presets, the run directory and the choices made where the
report is silent.
"""

from __future__ import annotations

from funduskit.training.loop import TrainResult, fit, resume_config
from funduskit.training.scheduler import ReduceOnPlateauWithReset
from funduskit.training.splits import Split, make_split, read_split, write_split
from funduskit.training.tasks import get_task
from funduskit.training.validation import evaluate_checkpoint

__all__ = ["ReduceOnPlateauWithReset", "Split", "TrainResult", "evaluate_checkpoint", "fit", "get_task", "make_split",
           "read_split", "resume_config", "write_split"]
