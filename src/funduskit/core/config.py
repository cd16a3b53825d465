"""Training configurations: one dataclass tree per run, three presets per task, YAML in and out.

Every choice the training loop makes — network and its arguments, input size, batch size,
epochs, optimizer, loss, schedule, augmentation strength, preprocessing, seed, threads, workers,
device, memory format, precision — is a field here; the loop reads nothing else. A run saves its
resolved configuration as ``config.yaml`` and can be repeated from it.

Presets (:func:`preset`):

- ``"paper"``: the report's sizes — disc / cup / fovea 640x640 at batch 4 (fovea LR 1e-5),
  glaucoma classifier 1024x1024 at batch 64 with SGD at LR 1e-3 and the plateau-with-reset
  schedule; vessel generator as in Son et al. 2019 (Adam 2e-4, beta1 0.5, adversarial weight 0.1).
- ``"cpu"``: the same code path with small inputs, batches and encoders, tuned so one fold of each
  task trains on the synthetic data set in minutes on two cores (``benchmarks/training.py``).
- ``"real"``: pretrained EfficientNet-Lite0 recipes for small real sets, disc / cup / glaucoma on
  disc-centred crops (``benchmarks/real_data.py``, docs/real-data.md).

Example:
    >>> config = preset("glaucoma", "paper")
    >>> config.data.input_size, config.batch_size, config.optimizer.name, config.optimizer.lr
    (1024, 64, 'sgd', 0.001)
    >>> override(config, {"data.fold": 2}).data.fold
    2
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.files import atomic_write_text
from funduskit.core.presets import PRESET_NAMES, preset_fields
from funduskit.core.tasks import TASKS


@dataclass
class ModelSpec:
    """A network by its registered name (``funduskit.models.create_model``) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossSpec:
    """A loss by its name in ``funduskit.training.losses.LOSSES`` and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """``name``: ``"sgd"``, ``"adam"`` or ``"adamw"``; ``momentum``/``nesterov`` apply to SGD, ``betas`` to Adam."""

    name: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0


@dataclass
class SchedulerConfig:
    """``"plateau_reset"`` (the report's schedule, on the validation metric) or ``"constant"``.

    ``patience`` epochs without gain of the validation metric divide the rate by ``1/factor``;
    a reduction that would go below ``min_lr`` resets it to the initial rate.
    """

    name: str = "plateau_reset"
    factor: float = 0.1
    patience: int = 10
    min_lr: float = 1e-6
    threshold: float = 0.0


@dataclass
class DataConfig:
    """What the network sees and how samples are split.

    Attributes:
        input_size: side of the square network input, pixels.
        preprocessing: ``"standardize"``, ``"normalize"``, ``"zero_local_mean"``, ``"lite"`` or ``"clahe"``.
        augmentation: strength passed to ``funduskit.transforms.augment.build_augmentation``
            (``"none"`` disables augmentation).
        split: ``"stratified"`` or ``"refuge2-report"`` (``funduskit.training.splits``).
        n_folds, fold: the cross-validation fold trained (validation = that fold).
        vessel_input: disc / cup / fovea only — where the vessel-map input comes from during
            training: ``"ground_truth"`` (the data set's vessel masks), ``"model"`` (a trained
            vessel generator, ``vessel_model``), ``"auto"`` (the model when given, else the
            masks) or ``"none"`` (an all-zero map).
        vessel_model: checkpoint (``best.pt`` of a vessel run, or its run directory).
        vessel_model_size: input size at which that vessel generator is run.
        view: ``"whole"`` (the network sees whole photographs, as in the report) or ``"disc"``
            (it sees crops centred on the optic disc: disc-centred sets as they are, whole
            photographs cut around their reference disc, ``funduskit.data.view.CropBox``).
        patch_size: training only — each training item is a random ``patch_size`` square cut
            from the augmented, preprocessed network-size image (thin vessels at full resolution,
            many small steps); None trains on the whole ``input_size`` image. Validation and
            prediction always see the whole image. A multiple of the network's input multiple.
        patches_per_image: training items an image gives per epoch (with ``patch_size``).
    """

    input_size: int
    preprocessing: str = "standardize"
    augmentation: str = "default"
    split: str = "stratified"
    n_folds: int = 4
    fold: int = 0
    vessel_input: str = "auto"
    vessel_model: str | None = None
    vessel_model_size: int | None = None
    view: str = "whole"
    patch_size: int | None = None
    patches_per_image: int = 1


#: What ``runtime.precision`` / ``--precision`` may say (``funduskit.runtime.device`` resolves it).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


@dataclass
class RuntimeConfig:
    """Where and how fast: device, threads, data-loading workers, memory format, precision.

    ``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    ``threads``: ``torch.set_num_threads`` value; 0 keeps torch's default.
    ``precision``: ``"auto"`` (bf16 autocast on CUDA; on CPUs with native bf16 instructions for
    prediction only, training on a CPU stays fp32), ``"fp32"`` or ``"bf16"`` (autocast forced).
    Configurations written before 0.2 say ``bf16: auto | on | off``; they are read as
    ``precision: auto | bf16 | fp32``.
    """

    device: str = "auto"
    threads: int = 0
    num_workers: int = 1
    persistent_workers: bool = True
    channels_last: bool = True
    precision: str = "auto"


@dataclass
class InitConfig:
    """Starting weights.

    ``checkpoint``: a funduskit checkpoint to fine-tune from (``--init``; disc, cup, fovea, vessel).
    ``encoder_weights``: a local file of encoder weights, or the name of installed ImageNet
    weights (``lite0``, ``lite1``, ``lite2``; :mod:`funduskit.models.pretrained`) (``--encoder-weights``).
    ``pretrained``: ask timm for ImageNet weights (``--pretrained``; needs a network).
    ``backbone_checkpoint``: glaucoma classifier in frozen mode — the checkpoint its backbone
    (everything but the last layer) is loaded from.
    """

    checkpoint: str | None = None
    encoder_weights: str | None = None
    pretrained: bool = False
    backbone_checkpoint: str | None = None


@dataclass
class TrainConfig:
    """The resolved configuration of one training run."""

    task: str
    preset: str
    model: ModelSpec
    loss: LossSpec
    data: DataConfig
    epochs: int
    batch_size: int
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    init: InitConfig = field(default_factory=InitConfig)
    seed: int = 0
    validation_batch_size: int | None = None
    # The vessel task is a GAN (Son et al. 2019): a discriminator with its own optimizer.
    discriminator: ModelSpec | None = None
    discriminator_optimizer: OptimizerConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Dict / YAML round trip and overrides
# --------------------------------------------------------------------------------------------

def _is_dataclass_type(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _dataclass_in(kind: Any) -> type | None:
    """The dataclass in ``kind`` (``X`` or ``X | None``), if any."""
    if _is_dataclass_type(kind):
        return kind
    for arg in typing.get_args(kind):
        if _is_dataclass_type(arg):
            return arg
    return None


def from_dict(cls: type, data: dict[str, Any], *, where: str = "config") -> Any:
    """Build dataclass ``cls`` from nested dicts, rejecting unknown keys with the key's dotted path."""
    if not isinstance(data, dict):
        raise FunduskitError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FunduskitError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = {}
    for key, value in data.items():
        nested = _dataclass_in(hints[key])
        values[key] = from_dict(nested, value, where=f"{where}.{key}") if nested and value is not None else value
    try:
        return cls(**values)
    except TypeError as error:
        raise FunduskitError(f"{where}: {error}") from error


def preset(task: str, name: str = "cpu") -> TrainConfig:
    """The preset configuration ``name`` (a column of :mod:`funduskit.core.presets`) of ``task``;
    a fresh object each call."""
    if task not in TASKS:
        raise FunduskitError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if name not in PRESET_NAMES:
        raise FunduskitError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return from_dict(TrainConfig, preset_fields(task, name))


#: The ``runtime.bf16`` values of configurations written before 0.2, as ``runtime.precision``.
LEGACY_BF16 = {"auto": "auto", "on": "bf16", "off": "fp32", True: "bf16", False: "fp32"}


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from the dict form written by :func:`save_config` (or by an older
    funduskit: ``runtime.bf16`` is read as ``runtime.precision``)."""
    runtime = data.get("runtime") if isinstance(data, dict) else None
    if isinstance(runtime, dict) and "bf16" in runtime and "precision" not in runtime:
        runtime = {key: value for key, value in runtime.items() if key != "bf16"}
        runtime["precision"] = LEGACY_BF16.get(data["runtime"]["bf16"], data["runtime"]["bf16"])
        data = {**data, "runtime": runtime}
    return from_dict(TrainConfig, data)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (keys in declaration order)."""
    return atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: str | Path) -> TrainConfig:
    """Read a configuration written by :func:`save_config` (or written by hand in that form)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
        return config_from_dict(data)
    except yaml.YAMLError as error:
        raise DataError(path, f"is not valid YAML ({error})") from error
    except FunduskitError as error:
        raise DataError(path, str(error)) from error


def override(config: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with dotted-path fields replaced, e.g. ``{"data.fold": 1, "epochs": 3}``.

    ``model.kwargs.NAME`` and ``loss.kwargs.NAME`` set one keyword argument.
    """
    data = config.to_dict()
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                if isinstance(node, dict) and node.get(part, {}) is None:
                    raise FunduskitError(f"config has no section {part!r} for the {config.task} task ({dotted!r})")
                raise FunduskitError(f"unknown configuration key {dotted!r}")
            node = node[part]
        if not parents or parents[-1] != "kwargs":
            if leaf not in node:
                raise FunduskitError(f"unknown configuration key {dotted!r}")
        node[leaf] = value
    return config_from_dict(data)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"data.input_size=256"`` -> ``("data.input_size", 256)``; the value is read as YAML."""
    if "=" not in text:
        raise FunduskitError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)
