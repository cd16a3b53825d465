"""The run directory's files: the one place their names are spelled.

``funduskit train`` writes a run directory; ``funduskit predict``, ``export``, ``bench`` and the
demo read it::

    RUN/config.yaml          the resolved configuration (funduskit.core.config)
    RUN/split.csv            image_id -> fold, role (funduskit.training.splits)
    RUN/augmentation.yaml    the augmentation pipeline (funduskit.transforms.augment)
    RUN/last.pt, best.pt     checkpoints after the latest epoch / at the best validation metric
    RUN/metrics.csv          one row per epoch: losses, validation metric, learning rate, seconds
    RUN/curves.png           the curves of metrics.csv
    RUN/model.onnx           an exported run (funduskit export), instead of the checkpoints
    RUN/scores.json          held-out figures of benchmarks/real_data.py (kept with the starter models)
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.csv"
AUGMENTATION_FILE = "augmentation.yaml"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
LAST = "last.pt"
BEST = "best.pt"
ONNX_FILE = "model.onnx"
SCORES_FILE = "scores.json"
#: The network files a run may hold, in the order prediction prefers them.
CHECKPOINT_NAMES = (BEST, LAST, ONNX_FILE)


def checkpoint_file(path: str | Path) -> Path:
    """A run directory means its ``best.pt``; a file is itself."""
    path = Path(path)
    return path / BEST if path.is_dir() else path
