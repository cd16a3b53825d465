"""Per-epoch metrics of a run: ``metrics.csv`` and a PNG of the curves (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from funduskit.core.files import atomic_path, atomic_write_text

EpochRecord = dict[str, float]


def write_metrics_csv(history: Sequence[EpochRecord], path: str | Path) -> Path:
    """Write one row per epoch; the columns are the union of the records' keys, ``epoch`` first."""
    path = Path(path)
    columns: list[str] = ["epoch"]
    for record in history:
        columns += [key for key in record if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\r\n")
    writer.writeheader()
    for record in history:
        writer.writerow({key: _format(value) for key, value in record.items()})
    return atomic_write_text(path, buffer.getvalue())


def _format(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def read_metrics_csv(path: str | Path) -> list[EpochRecord]:
    """Read ``metrics.csv`` back (numbers as floats, ``epoch`` as int)."""
    with Path(path).open(newline="") as handle:
        return [
            {key: (int(value) if key == "epoch" else float(value)) for key, value in row.items() if value != ""}
            for row in csv.DictReader(handle)
        ]


def plot_curves(history: Sequence[EpochRecord], path: str | Path, *, metric: str, title: str = "") -> Path:
    """Two panels: training/validation losses, and the validation metric with the learning rate.

    Args:
        history: records with ``epoch``, ``train_loss``, optionally ``val_loss``, ``lr`` and ``metric``.
        path: the PNG to write.
        metric: key of the validation metric in the records (e.g. ``"val_dice"``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [record["epoch"] for record in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for key in ("train_loss", "val_loss"):
        if any(key in record for record in history):
            loss_axis.plot(epochs, [record.get(key, float("nan")) for record in history], marker="o", label=key)
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.legend()
    metric_axis.plot(epochs, [record.get(metric, float("nan")) for record in history], marker="o",
                     color="tab:green", label=metric)
    metric_axis.set_xlabel("epoch")
    metric_axis.set_ylabel(metric)
    if any("lr" in record for record in history):
        lr_axis = metric_axis.twinx()
        lr_axis.plot(epochs, [record.get("lr", float("nan")) for record in history], color="tab:grey",
                     linestyle="--", label="lr")
        lr_axis.set_yscale("log")
        lr_axis.set_ylabel("learning rate")
    metric_axis.legend(loc="lower right")
    if title:
        figure.suptitle(title)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
    return path
