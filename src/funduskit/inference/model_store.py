"""Finding the trained models that ``funduskit predict --models DIR`` uses.

``DIR`` is either

* a folder of training run directories, at any depth up to :data:`MAX_SEARCH_DEPTH`: every folder
  holding a ``config.yaml`` and a checkpoint (``best.pt``, else ``last.pt``) is one model, and its
  configuration's ``task`` says what it predicts; or
* a folder holding ``models.yaml``, a manifest naming the run directories of each task
  (paths relative to the manifest, or absolute)::

      vessel: runs/vessel
      disc: [runs/disc-fold0, runs/disc-fold1, runs/disc-fold2, runs/disc-fold3]
      cup: [runs/cup-fold0, runs/cup-fold1]
      fovea: [runs/fovea-fold0, runs/fovea-fold1]
      glaucoma: [runs/glaucoma-normalize-fold0, runs/glaucoma-zlm-fold0]

The post-processing thresholds chosen by ``funduskit tune`` live in ``DIR/thresholds.json``, with
the glaucoma combiner it fits when the validation photographs have labels
(:mod:`funduskit.inference.glaucoma_combiner`).

The **starter models** that ship with the package (:data:`STARTER_DIR`, a manifest folder built
by ``funduskit starter-models``) answer every task for which ``DIR`` has no model, and every task
when no ``DIR`` is given (:func:`load_models`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from funduskit.core.config import TrainConfig, load_config
from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.tasks import TASKS
from funduskit.inference.glaucoma_combiner import GlaucomaCombiner
from funduskit.runs.layout import CHECKPOINT_NAMES, CONFIG_FILE

MANIFEST = "models.yaml"
THRESHOLDS_FILE = "thresholds.json"
MAX_SEARCH_DEPTH = 4
#: The starter models installed with the package (``funduskit/starter_models``).
STARTER_DIR = Path(__file__).resolve().parents[1] / "starter_models"
STARTER = "starter"  # the origin of a task answered by the starter models


@dataclass(frozen=True)
class RunInfo:
    """One trained model: its run directory, resolved configuration and checkpoint file."""

    run_dir: Path
    config: TrainConfig
    checkpoint: Path

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def view(self) -> str:
        """``"whole"`` or ``"disc"``: what the network was trained to see (``data.view``)."""
        return str(getattr(self.config.data, "view", "whole"))


@dataclass(frozen=True)
class Thresholds:
    """What ``funduskit tune`` chose on validation predictions: the post-processing thresholds of
    the disc and cup probability maps, and (optional) the glaucoma combiner."""

    disc: float = 0.5
    cup: float = 0.5
    glaucoma: GlaucomaCombiner | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"disc": self.disc, "cup": self.cup}
        if self.glaucoma is not None:
            data["glaucoma"] = self.glaucoma.as_dict()
        return data


@dataclass(frozen=True)
class ModelSet:
    """The models a prediction uses: the runs of each task, where each task's came from
    (:data:`STARTER` or the ``--models`` folder), and the thresholds that apply."""

    runs: dict[str, list[RunInfo]]
    origin: dict[str, str]
    thresholds: Thresholds
    models_dir: Path | None = None


def installed_starter_dir(starter_dir: Path | None = STARTER_DIR) -> Path | None:
    """``starter_dir`` when it holds a starter set (its manifest), else None."""
    return starter_dir if starter_dir is not None and (starter_dir / MANIFEST).is_file() else None


def load_models(models_dir: str | Path | None = None, *, starter_dir: Path | None = STARTER_DIR,
                ensemble: str = "full") -> ModelSet:
    """The runs of ``models_dir``, with the starter models for every task it has none of.

    Args:
        models_dir: the user's models folder (:func:`find_runs`), or None for the starter set alone.
        starter_dir: the starter set (None: never use it).
        ensemble: ``"full"`` (every run) or ``"fast"`` (fewer members of each task:
            :mod:`funduskit.inference.fast_ensemble`).
    Returns:
        The :class:`ModelSet`; its thresholds are ``models_dir``'s when it has a ``thresholds.json``,
        else the starter set's (0.5 / 0.5 unless tuned).
    Raises:
        FunduskitError: neither a models folder nor an installed starter set.
    """
    starter = installed_starter_dir(starter_dir)
    if models_dir is None and starter is None:
        raise FunduskitError(
            "no trained models: this installation has no starter models and no --models folder was given. "
            "Pass --models DIR (run directories of `funduskit train`), or rebuild the starter set with "
            "`funduskit starter-models --data DATA`."
        )
    mine = find_runs(models_dir) if models_dir is not None else {}
    theirs = find_runs(starter) if starter is not None else {}
    runs = {task: mine.get(task) or theirs[task] for task in TASKS if mine.get(task) or theirs.get(task)}
    origin = {task: str(models_dir) if mine.get(task) else STARTER for task in runs}
    from funduskit.inference.fast_ensemble import select_ensemble  # (it builds on this module)

    runs = select_ensemble(runs, ensemble, models_dir, origin)
    tuned = models_dir is not None and (Path(models_dir) / THRESHOLDS_FILE).is_file()
    thresholds = read_thresholds(models_dir if tuned else starter) if (tuned or starter) else Thresholds()
    return ModelSet(runs=runs, origin=origin, thresholds=thresholds,
                    models_dir=Path(models_dir) if models_dir is not None else None)


def read_run(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of one run directory (``config.yaml`` + ``best.pt`` or ``last.pt``).

    Raises:
        DataError: the folder, its configuration or its checkpoint is missing or unreadable.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "run directory not found")
    config = load_config(run_dir / CONFIG_FILE)
    for name in CHECKPOINT_NAMES:
        if (run_dir / name).is_file():
            return RunInfo(run_dir=run_dir, config=config, checkpoint=run_dir / name)
    raise DataError(run_dir, f"holds no checkpoint ({' or '.join(CHECKPOINT_NAMES)})",
                    fix="train it to the end or copy its checkpoint there")


def find_runs(models_dir: str | Path) -> dict[str, list[RunInfo]]:
    """The runs of each task in ``models_dir`` (manifest if there is one, else a folder search).

    Returns:
        task -> runs sorted by path; tasks without a run are absent.

    Raises:
        DataError: the folder is missing, the manifest is malformed or names a run whose
            configuration is for another task.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise DataError(models_dir, "models folder not found", fix="give the folder that holds the training runs")
    manifest = models_dir / MANIFEST
    runs = runs_from_manifest(manifest) if manifest.is_file() else _search_runs(models_dir)
    by_task: dict[str, list[RunInfo]] = {}
    for run in sorted(runs, key=lambda r: str(r.run_dir)):
        by_task.setdefault(run.task, []).append(run)
    return by_task


def required_tasks(runs: Mapping[str, Sequence[RunInfo]]) -> tuple[str, ...]:
    """The tasks a prediction cannot do without: disc and cup, and vessel when a disc, cup or
    fovea network takes the vessel map (``data.vessel_input`` other than ``none``). Without fovea
    networks the fovea is left empty, without classifiers the glaucoma probability."""
    takes_vessels = any(str(run.config.data.vessel_input) != "none" for task in ("disc", "cup", "fovea")
                        for run in runs.get(task, []))
    return ("vessel", "disc", "cup") if takes_vessels else ("disc", "cup")


def require_tasks(
    runs: Mapping[str, Sequence[RunInfo]], models_dir: str | Path, tasks: Iterable[str] = TASKS
) -> None:
    """Raise a :class:`FunduskitError` naming every task in ``tasks`` that has no run."""
    missing = [task for task in tasks if not runs.get(task)]
    if not missing:
        return
    found = ", ".join(f"{task} x{len(items)}" for task, items in runs.items()) or "no runs at all"
    raise FunduskitError(
        f"{models_dir}: no trained model for task(s) {', '.join(missing)} (found: {found}). "
        f"Train them with `funduskit train {missing[0]} --data DATA --out {Path(models_dir) / (missing[0] + '-fold0')}`"
        f" or name their run directories in {Path(models_dir) / MANIFEST}."
    )


def runs_from_manifest(manifest: Path) -> list[RunInfo]:
    """The runs a ``models.yaml``-format manifest names (see the module doc), checked against their
    configurations' tasks.

    Raises:
        DataError: the manifest is unreadable or malformed, or names a run of another task.
    """
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(manifest, f"cannot be read as YAML ({error})") from error
    if not isinstance(data, dict):
        raise DataError(manifest, "must map task names to run directories", fix="e.g. 'disc: [runs/disc-fold0]'")
    unknown = sorted(set(map(str, data)) - set(TASKS))
    if unknown:
        raise DataError(manifest, f"unknown task(s) {', '.join(unknown)}; tasks are {', '.join(TASKS)}")
    runs: list[RunInfo] = []
    for task, entries in data.items():
        entries = [entries] if isinstance(entries, str) else entries
        if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
            raise DataError(manifest, f"'{task}' must be a run directory or a list of them")
        for entry in entries:
            path = Path(entry).expanduser()
            run = read_run(path if path.is_absolute() else manifest.parent / path)
            if run.task != task:
                raise DataError(manifest, f"'{task}' names {entry}, whose config.yaml is for task '{run.task}'")
            runs.append(run)
    return runs


def _search_runs(models_dir: Path) -> list[RunInfo]:
    runs: list[RunInfo] = []
    base_depth = len(models_dir.parts)
    for folder, subfolders, files in os.walk(models_dir, followlinks=True):
        path = Path(folder)
        subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
        if len(path.parts) - base_depth >= MAX_SEARCH_DEPTH:
            subfolders[:] = []
        if CONFIG_FILE in files and any(name in files for name in CHECKPOINT_NAMES):
            runs.append(read_run(path))
            subfolders[:] = []  # a run's own sub-folders are not runs
    return runs


def read_thresholds(models_dir: str | Path) -> Thresholds:
    """``models_dir/thresholds.json`` if ``funduskit tune`` wrote one, else 0.5 and 0.5."""
    path = Path(models_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return Thresholds()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        combiner = GlaucomaCombiner.from_dict(data["glaucoma"]) if data.get("glaucoma") else None
        thresholds = Thresholds(disc=float(data["disc"]), cup=float(data["cup"]), glaucoma=combiner)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(path, f"cannot be read ({error})",
                        fix="expected {\"disc\": 0.5, \"cup\": 0.5}; rerun `funduskit tune` or delete it") from error
    for name, value in (("disc", thresholds.disc), ("cup", thresholds.cup)):
        if not 0.0 < value < 1.0:
            raise DataError(path, f"{name} threshold {value} is outside (0, 1)")
    return thresholds


def fingerprint(runs: Mapping[str, Sequence[RunInfo]], extra: Mapping[str, object]) -> str:
    """A short hash of the checkpoints used (path, size, mtime) and ``extra`` options.

    Two ``funduskit predict`` runs with the same fingerprint give the same answers, so a
    restarted run may keep the records of the first.
    """
    items = []
    for task in sorted(runs):
        for run in runs[task]:
            stat = run.checkpoint.stat()
            items.append([task, str(run.checkpoint.resolve()), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"runs": items, "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
