"""What a models folder holds, for ``funduskit models``: one :class:`ModelEntry` per trained run.

Everything comes from the run directory as training wrote it: ``config.yaml`` (task, preset,
network, input size, view), ``split.csv`` (the data sets trained on, by the layout each photograph
was read from), ``metrics.csv`` (the best validation metric), ``scores.json`` (the held-out
figures ``benchmarks/real_data.py`` measured, kept with the starter models) and the checkpoint's
size on disk. The data's terms come from :data:`DATA_TERMS`, by layout; a layout not listed there
says so.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from funduskit.core.tasks import TASKS, VALIDATION_METRICS
from funduskit.inference.model_store import STARTER, RunInfo
from funduskit.runs.layout import METRICS_FILE, SCORES_FILE, SPLIT_FILE

#: The terms of the public data sets funduskit reads, by the layout name readers give (``Sample.source``).
DATA_TERMS: dict[str, str] = {
    "refuge": "REFUGE challenge terms (research use)",
    "refuge2": "REFUGE / REFUGE2 challenge terms (research use), or funduskit's own synthetic set (no terms)",
    "drishti-gs1": "Drishti-GS1: research use (IIIT Hyderabad)",
    "rim-one-dl": "RIM-ONE DL: research use, cite Fumero et al. 2020",
    "drive": "DRIVE: research use",
    "chase_db1": "CHASE_DB1: CC BY 4.0",
    "hrf": "HRF: research use",
    "idrid": "IDRiD: CC BY 4.0",
    "riga": "RIGA: research use",
    "palm": "PALM: research use",
    "adam": "ADAM: research use",
    "folder": "a plain folder: the terms of whoever made it",
}


@dataclass(frozen=True)
class ModelEntry:
    """One trained network as ``funduskit models`` lists it."""

    name: str
    task: str
    preset: str
    network: str
    input_size: int
    view: str
    training_data: str  # "rim-one-dl (271)" — layouts and photographs trained on
    size_mb: float
    metric: str  # "val_auroc 0.9858 (epoch 11)", or "" without metrics.csv
    terms: str
    origin: str = ""  # "starter" or the models folder
    scores: str = ""  # "auroc 0.9858": the benchmark's held-out figures, or ""


def describe_run(run: RunInfo, origin: str = "") -> ModelEntry:
    """The catalogue entry of one run directory (``origin``: where it comes from)."""
    config = run.config
    kwargs = config.model.kwargs
    encoder = kwargs.get("photo_encoder") or kwargs.get("backbone")
    network = f"{config.model.name} ({encoder})" if encoder else config.model.name
    sources = _training_sources(run.run_dir / SPLIT_FILE)
    return ModelEntry(
        name=run.run_dir.name if origin == STARTER else str(run.run_dir),
        task=run.task,
        preset=str(config.preset),
        network=network,
        input_size=int(config.data.input_size),
        view=str(config.data.view),
        training_data=", ".join(f"{source} ({count})" for source, count in sources.items()) or "unknown",
        size_mb=run.checkpoint.stat().st_size / 2**20,
        metric=_best_metric(run.run_dir / METRICS_FILE, run.task),
        terms="; ".join(DATA_TERMS.get(source, f"{source}: terms not known to funduskit") for source in sources),
        origin=origin,
        scores=_held_out_scores(run.run_dir / SCORES_FILE),
    )


def describe_runs(runs: Mapping[str, Sequence[RunInfo]], origin: Mapping[str, str] | None = None) -> list[ModelEntry]:
    """Entries of every run, in task order (``origin``: task -> where its runs come from)."""
    return [describe_run(run, (origin or {}).get(task, "")) for task in TASKS for run in runs.get(task, [])]


def _held_out_scores(path: Path) -> str:
    """``"dice_drishti 0.9612, dice_rimone 0.9570"`` from a ``scores.json`` (training minutes left out)."""
    if not path.is_file():
        return ""
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return ", ".join(f"{name} {value:.4f}" for name, value in scores.items()
                     if name != "minutes" and isinstance(value, int | float))


def _training_sources(split_file: Path) -> dict[str, int]:
    """Layout -> number of training photographs, from a run's split.csv ({} without one)."""
    if not split_file.is_file():
        return {}
    with open(split_file, newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        counts: dict[str, int] = {}
        for row in rows:
            if row.get("role") == "train":
                counts[row.get("source") or "unknown"] = counts.get(row.get("source") or "unknown", 0) + 1
    return counts


def _best_metric(metrics_file: Path, task: str) -> str:
    """``"val_dice 0.9568 (epoch 10)"``: the best epoch's validation metric, or ""."""
    if not metrics_file.is_file() or task not in VALIDATION_METRICS:
        return ""
    name, mode = VALIDATION_METRICS[task]
    with open(metrics_file, newline="", encoding="utf-8") as handle:
        scored = [(float(row[name]), int(row["epoch"])) for row in csv.DictReader(handle) if row.get(name)]
    scored = [(value, epoch) for value, epoch in scored if value == value]  # NaN never best
    if not scored:
        return ""
    value, epoch = (max if mode == "max" else min)(scored, key=lambda pair: pair[0])
    return f"{name} {value:.4f} (epoch {epoch})"
