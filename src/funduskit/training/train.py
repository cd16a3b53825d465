"""``funduskit train`` as one typed function: read the data, resolve the configuration, fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from funduskit.core.config import TrainConfig, load_config, override, preset
from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.sample import Sample
from funduskit.runs.layout import CONFIG_FILE
from funduskit.training.items import usable_samples
from funduskit.training.loop import TrainResult, fit, resume_config
from funduskit.training.tasks import get_task


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<task>-<preset>[-<preprocessing>]-fold<K>`` under the current directory."""
    parts = [config.task, config.preset]
    if config.task == "glaucoma":
        parts.append(config.data.preprocessing.replace("_", "-"))
    return Path("runs") / f"{'-'.join(parts)}-fold{config.data.fold}"


def resolve_config(task: str, *, preset_name: str = "cpu", config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The preset (or a saved ``config.yaml``) of ``task`` with dotted-path ``overrides`` applied."""
    config = load_config(config_file) if config_file else preset(task, preset_name)
    if config.task != task:
        raise FunduskitError(f"{config_file} configures the {config.task!r} task, not {task!r}")
    return override(config, dict(overrides or {})) if overrides else config


def read_training_data(data: str | Path | Sequence[str | Path], data_format: str | None = None) -> list[Sample]:
    """The samples of one data set, or of several read one after the other (``--data A --data B``).

    Raises:
        DataError: two data sets hold photographs with the same file name (the splits and the
            run's records name photographs by file name).
    """
    from funduskit.data.datasets import read_dataset

    folders = [data] if isinstance(data, (str, Path)) else list(data)
    samples: list[Sample] = []
    first_seen: dict[str, Path] = {}
    for folder in folders:
        for sample in read_dataset(folder, format=data_format):
            if sample.image_id in first_seen and first_seen[sample.image_id] != Path(folder):
                raise DataError(sample.image_path, f"has the file name of a photograph of {first_seen[sample.image_id]}; "
                                "photographs of data sets trained on together need different names",
                                fix="rename one of the two, or train on the sets one at a time")
            first_seen.setdefault(sample.image_id, Path(folder))
            samples.append(sample)
    return samples


def train(task: str, data: str | Path | Sequence[str | Path], *, data_format: str | None = None, preset_name: str = "cpu",
          config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
          out: str | Path | None = None, resume: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Train one fold of ``task`` on the data set at ``data``.

    Args:
        task: ``vessel``, ``disc``, ``cup``, ``fovea`` or ``glaucoma``.
        data: a data set folder in any layout ``funduskit.data.datasets`` reads, or several
            (:func:`read_training_data`), e.g. DRIVE and CHASE_DB1 for the vessel model.
        data_format: the layout's name when detection should be skipped.
        preset_name: ``"cpu"`` or ``"paper"``.
        config_file: start from this configuration (YAML) instead of the preset.
        overrides: dotted-path changes, e.g. ``{"data.fold": 2, "epochs": 30}``.
        out: the run directory (default :func:`default_run_dir`).
        resume: a run directory to continue; its own configuration is used (only ``epochs``
            may be raised through ``overrides``).
    """
    where = str(data) if isinstance(data, (str, Path)) else " + ".join(map(str, data))
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / CONFIG_FILE).is_file():
            raise FunduskitError(f"{run_dir} is not a training run (no {CONFIG_FILE}); resume takes a run directory")
        extra = set(overrides or {}) - {"epochs"}
        if extra:
            raise FunduskitError(f"a resumed run keeps its configuration; only epochs may change (got {', '.join(sorted(extra))})")
        config = resume_config(run_dir, epochs=(overrides or {}).get("epochs"))
        if config.task != task:
            raise FunduskitError(f"{run_dir} trains the {config.task!r} task, not {task!r}")
        samples = read_training_data(data, data_format)
        usable_samples(get_task(task), samples, where=where)
        return fit(config, samples, run_dir, resume=True, show_progress=show_progress)
    config = resolve_config(task, preset_name=preset_name, config_file=config_file, overrides=overrides)
    samples = read_training_data(data, data_format)
    usable_samples(get_task(task), samples, where=where)
    return fit(config, samples, Path(out) if out else default_run_dir(config), show_progress=show_progress)
