"""The starter models that ship in the package, and the one command that rebuilds them.

``funduskit predict`` without ``--models`` uses the networks in :data:`STARTER_DIR`
(``funduskit/starter_models/``: a ``models.yaml`` manifest and one run directory per network).
:func:`build_starter_models` makes them from folders laid out as ``../shared/data`` (see its
README): every :data:`STARTER_MODELS` entry trains fold 0 of a 5-fold split of its data with the
``real`` preset (so each network has a validation fold nobody trained on, whose figures the
model card quotes), then :func:`pack_run` keeps only what prediction needs, the network
as ONNX with float16 weights (half the bytes; float32 arithmetic in ONNX Runtime), its
configuration, split and training curve::

    funduskit starter-models --data ../shared/data --work runs/real-data --out src/funduskit/starter_models

The work folder is the real-data benchmark's (``benchmarks/real_data.py``): a run the benchmark
has finished, at ``WORK/<row>/fold0``, is packed as it is, an interrupted one resumed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from funduskit.core.config import config_from_dict, save_config
from funduskit.core.errors import DataError
from funduskit.core.files import atomic_write_text
from funduskit.inference.model_store import MANIFEST, STARTER_DIR
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.runs.layout import BEST, CONFIG_FILE, LAST, METRICS_FILE, SCORES_FILE, SPLIT_FILE

#: The shared real sets, by key: folder under the data root (``../shared/data``'s layout).
SHARED_DATA_SETS: dict[str, str] = {
    "drive": "drive/training",
    "chase": "chase_db1",
    "drishti": "drishti-gs1/training",
    "rimone": "rim-one-dl",
}
SYNTHETIC = "synthetic"  # a data key: funduskit's own synthetic set, generated into the work folder
SYNTHETIC_PHOTOS = 160
SYNTHETIC_SCALE = 0.5  # of the cameras' full frames: the fovea network sees 320 px
STARTER_FOLDS = 5
KEPT_FILES = (SPLIT_FILE, METRICS_FILE, SCORES_FILE)  # copied beside the packed model.onnx and config.yaml


@dataclass(frozen=True)
class StarterModel:
    """One network of the starter set.

    ``row``: its run's name in the work folder (the real-data benchmark row that trains the same
    recipe); ``data``: keys of :data:`SHARED_DATA_SETS` (or :data:`SYNTHETIC`); ``changes``: the
    configuration changes to the ``real`` preset beyond fold 0 of :data:`STARTER_FOLDS`
    (``funduskit train --set KEY=VALUE``).
    """

    row: str
    task: str
    data: tuple[str, ...]
    changes: tuple[tuple[str, object], ...] = ()

    @property
    def arguments(self) -> tuple[str, ...]:
        """The changes as ``funduskit train`` options (``--set KEY=VALUE`` each)."""
        return tuple(item for key, value in self.changes for item in ("--set", f"{key}={value}"))


STARTER_MODELS: tuple[StarterModel, ...] = (
    # 192 px patches of the 576 px image, V-GAN's loss with a fifth of its adversarial weight, the
    # light augmentation: DRIVE AUC 0.976 / Dice 0.797, CHASE_DB1 0.980 / 0.802 (docs/real-data.md)
    StarterModel("vessel-drive+chase-patches-adv02", "vessel", ("drive", "chase"), (
        ("data.preprocessing", "clahe"), ("data.patch_size", 192), ("data.patches_per_image", 8), ("batch_size", 8),
        ("epochs", 28), ("scheduler.patience", 5), ("data.augmentation", "light"), ("loss.kwargs.dice_weight", 0.0),
        ("loss.kwargs.adversarial_weight", 0.02))),
    StarterModel("disc-drishti-whole", "disc", ("drishti",), (("data.view", "whole"), ("data.input_size", 384))),
    StarterModel("disc-crop-drishti+rimone", "disc", ("drishti", "rimone"), (("epochs", 12),)),
    StarterModel("cup-crop-drishti+rimone", "cup", ("drishti", "rimone"), (("epochs", 24),)),
    StarterModel("glaucoma-lite0", "glaucoma", ("rimone",)),
    StarterModel("fovea-synthetic", "fovea", (SYNTHETIC,)),
)


def starter_by_row(row: str) -> StarterModel:
    """The :data:`STARTER_MODELS` entry of a benchmark row name."""
    for model in STARTER_MODELS:
        if model.row == row:
            return model
    raise KeyError(row)


def pack_run(run_dir: str | Path, target: str | Path) -> Path:
    """Copy what prediction needs of a trained run into ``target``: the network as ONNX with its
    weights stored in float16 (:func:`funduskit.tools.export.store_float16`: half the bytes,
    float32 arithmetic; ONNX Runtime ran the starter networks about twice as fast as torch on
    this project's CPUs, docs/starter-models.md), checked against the torch network, the
    configuration without the paths of the machine it was trained on, ``split.csv``,
    ``metrics.csv``, the benchmark's ``scores.json`` and ``export.json``.

    Raises:
        DataError: the run has no best.pt.
        FunduskitError: the export differs from the torch network.
    """
    from dataclasses import asdict

    from funduskit.tools.export import EXPORT_RECORD, export_run

    run_dir, target = Path(run_dir), Path(target)
    if target.exists():
        shutil.rmtree(target)
    exported = export_run(run_dir / BEST, target, float16_storage=True)
    exported.source, exported.run_dir = f"{run_dir.parent.name}/{run_dir.name}/{BEST}", target.name
    config = _portable_config(load_checkpoint(run_dir / BEST)["config"])
    save_config(config_from_dict(config), target / CONFIG_FILE)
    atomic_write_text(target / EXPORT_RECORD, json.dumps(asdict(exported), indent=1) + "\n")
    for name in KEPT_FILES:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, target / name)
    return target


def _portable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's configuration with the builder's file paths dropped (they mean nothing elsewhere):
    the vessel model and the checkpoints it started from are recorded by name only."""
    portable = json.loads(json.dumps(config))  # deep copy of plain data
    data, init = portable.get("data", {}), portable.get("init", {})
    if data.get("vessel_model"):
        data["vessel_model"] = Path(str(data["vessel_model"])).parent.name or Path(str(data["vessel_model"])).name
    for key in ("checkpoint", "backbone_checkpoint"):
        if init.get(key):
            init[key] = Path(str(init[key])).name
    return portable


def write_manifest(out_dir: Path, models: Sequence[StarterModel]) -> Path:
    """``out_dir/models.yaml``: task -> the packed run directories of that task."""
    manifest: dict[str, list[str]] = {}
    for model in models:
        manifest.setdefault(model.task, []).append(model.row)
    atomic_write_text(out_dir / MANIFEST, yaml.safe_dump(manifest, sort_keys=False))
    return out_dir / MANIFEST


def build_starter_models(
    data_root: str | Path,
    work_dir: str | Path,
    out_dir: str | Path = STARTER_DIR,
    *,
    models: Sequence[StarterModel] = STARTER_MODELS,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Train (or resume, or reuse) every starter network in ``work_dir`` and pack the set into
    ``out_dir`` (replaced). Returns the manifest written.

    Raises:
        DataError: a data set of ``data_root`` is missing.
    """
    from funduskit.training.train import train

    data_root, work_dir, out_dir = Path(data_root), Path(work_dir), Path(out_dir)
    for model in models:
        for key in model.data:
            if key != SYNTHETIC and not (data_root / SHARED_DATA_SETS[key]).is_dir():
                raise DataError(data_root / SHARED_DATA_SETS[key], f"not found; the {model.row} starter model trains on it",
                                fix="give --data the folder laid out as ../shared/data (see its README)")
    for model in models:
        run_dir = work_dir / model.row / "fold0"
        if run_finished(run_dir):
            log(f"{model.row}: trained already ({run_dir})")
            continue
        folders = [_data_folder(key, data_root, work_dir) for key in model.data]
        overrides = _train_overrides(model)
        resume = run_dir if (run_dir / LAST).is_file() else None
        log(f"{model.row}: training {model.task} on {', '.join(map(str, folders))}")
        train(model.task, folders, preset_name="real", overrides=overrides, out=None if resume else run_dir,
              resume=resume, show_progress=show_progress)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for model in models:
        pack_run(work_dir / model.row / "fold0", out_dir / model.row)
    return write_manifest(out_dir, models)


def _train_overrides(model: StarterModel) -> dict[str, object]:
    """The configuration changes of fold 0 of :data:`STARTER_FOLDS` and the model's own."""
    return {"data.n_folds": STARTER_FOLDS, "data.fold": 0, **dict(model.changes)}


def _data_folder(key: str, data_root: Path, work_dir: Path) -> Path:
    """The folder of a data key; the synthetic set is generated (once) into the work folder."""
    if key != SYNTHETIC:
        return data_root / SHARED_DATA_SETS[key]
    from funduskit.synthetic.dataset import generate_dataset

    folder = work_dir / SYNTHETIC
    if not (folder / "synth.json").is_file():
        generate_dataset(folder, n=SYNTHETIC_PHOTOS, seed=0, scale=SYNTHETIC_SCALE)
    return folder


def run_finished(run_dir: Path) -> bool:
    """Whether a run trained all its epochs (its best.pt exists and metrics.csv has every epoch)."""
    import csv

    from funduskit.core.config import load_config

    if not (run_dir / BEST).is_file() or not (run_dir / METRICS_FILE).is_file():
        return False
    with open(run_dir / METRICS_FILE, newline="", encoding="utf-8") as handle:
        epochs = len(list(csv.DictReader(handle)))
    return epochs >= load_config(run_dir / CONFIG_FILE).epochs


def packed_size_mb(folder: str | Path = STARTER_DIR) -> float:
    """Bytes on disk of a packed set, in MiB."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file()) / 2**20
