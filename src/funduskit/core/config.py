"""Training configurations: one dataclass tree per run, two presets per task, YAML in and out.

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
from funduskit.core.tasks import TASKS

PRESETS: tuple[str, ...] = ("cpu", "paper")


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
        preprocessing: ``"standardize"``, ``"normalize"`` or ``"zero_local_mean"``.
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


@dataclass
class RuntimeConfig:
    """Where and how fast: device, threads, data-loading workers, memory format, precision.

    ``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    ``threads``: ``torch.set_num_threads`` value; 0 keeps torch's default.
    ``bf16``: ``"auto"`` (bf16 autocast on CUDA; on CPUs with native bf16 instructions for
    prediction only, training on a CPU stays fp32), ``"on"`` or ``"off"``.
    """

    device: str = "auto"
    threads: int = 0
    num_workers: int = 1
    persistent_workers: bool = True
    channels_last: bool = True
    bf16: str = "auto"


@dataclass
class InitConfig:
    """Starting weights.

    ``checkpoint``: a funduskit checkpoint to fine-tune from (``--init``; disc, cup, fovea, vessel).
    ``encoder_weights``: a local file of encoder weights (``--encoder-weights``).
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
# Presets
# --------------------------------------------------------------------------------------------

def _two_branch(name: str, photo_encoder: str, vessel_encoder: str, decoder_channels: list[int]) -> ModelSpec:
    return ModelSpec(name, {"photo_encoder": photo_encoder, "vessel_encoder": vessel_encoder,
                            "decoder_channels": decoder_channels})


def _paper(task: str) -> TrainConfig:
    segmentation_scheduler = SchedulerConfig(name="plateau_reset", patience=10, min_lr=1e-7)
    if task in ("disc", "cup"):
        return TrainConfig(
            task=task, preset="paper",
            model=_two_branch("disc_cup_segmenter", "efficientnet_b4", "efficientnet_b0", [256, 128, 64]),
            loss=LossSpec("bce_dice", {"bce_weight": 1.0, "dice_weight": 1.0}),
            data=DataConfig(input_size=640, preprocessing="standardize"),
            epochs=100, batch_size=4,
            optimizer=OptimizerConfig(name="adam", lr=1e-4),
            scheduler=segmentation_scheduler,
            runtime=RuntimeConfig(num_workers=4),
        )
    if task == "fovea":
        return TrainConfig(
            task=task, preset="paper",
            model=_two_branch("fovea_localiser", "efficientnet_b4", "efficientnet_b0", [256, 128]),
            loss=LossSpec("fovea", {"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "bce",
                                    "gaussian_sigma": 0.0}),
            data=DataConfig(input_size=640, preprocessing="standardize"),
            epochs=100, batch_size=4,
            optimizer=OptimizerConfig(name="adam", lr=1e-5),
            scheduler=SchedulerConfig(name="constant"),
            runtime=RuntimeConfig(num_workers=4),
        )
    if task == "vessel":
        return TrainConfig(
            task=task, preset="paper",
            model=ModelSpec("vessel_generator", {"base_width": 32, "depth": 4}),
            loss=LossSpec("bce_adversarial", {"adversarial_weight": 0.1, "dice_weight": 0.0}),
            data=DataConfig(input_size=640, preprocessing="standardize"),
            epochs=100, batch_size=4,
            optimizer=OptimizerConfig(name="adam", lr=2e-4, betas=[0.5, 0.999]),
            scheduler=SchedulerConfig(name="constant"),
            # NCHW: the plain U-Net with BatchNorm runs about 2x slower in channels_last on CPU
            runtime=RuntimeConfig(num_workers=4, channels_last=False),
            discriminator=ModelSpec("vessel_discriminator", {"base_width": 32, "output": "image"}),
            discriminator_optimizer=OptimizerConfig(name="adam", lr=2e-4, betas=[0.5, 0.999]),
        )
    if task == "glaucoma":
        return TrainConfig(
            task=task, preset="paper",
            model=ModelSpec("glaucoma_classifier", {"backbone": "efficientnet_b0", "pool_size": 4}),
            loss=LossSpec("bce", {}),
            data=DataConfig(input_size=1024, preprocessing="normalize", split="stratified"),
            epochs=100, batch_size=64,
            optimizer=OptimizerConfig(name="sgd", lr=1e-3, momentum=0.9),
            scheduler=SchedulerConfig(name="plateau_reset", factor=0.1, patience=10, min_lr=1e-6),
            runtime=RuntimeConfig(num_workers=8),
        )
    raise FunduskitError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _cpu(task: str) -> TrainConfig:
    # Tuned on synthetic data (benchmarks/training.py): MobileNetV3-small encoders train from
    # random weights several times faster than EfficientNet-B0 on a CPU and reach the targets;
    # Adam from scratch instead of the report's fine-tuning / SGD on a frozen backbone.
    runtime = RuntimeConfig(threads=2, num_workers=1)
    photo, vessel_branch = "mobilenetv3_small_100", "mobilenetv3_small_050"
    if task in ("disc", "cup", "fovea"):
        if task == "fovea":
            model = _two_branch("fovea_localiser", photo, vessel_branch, [64, 32])
            loss = LossSpec("fovea", {"confidence_weight": 1.0, "offset_weight": 1.0, "offset_loss": "l1",
                                      "gaussian_sigma": 0.0})
        else:
            model = _two_branch("disc_cup_segmenter", photo, vessel_branch, [64, 32, 16])
            loss = LossSpec("bce_dice", {"bce_weight": 1.0, "dice_weight": 1.0})
        return TrainConfig(
            task=task, preset="cpu", model=model, loss=loss,
            # the cup is a few pixels across at 256: it gets a larger input than the disc and fovea
            data=DataConfig(input_size=320 if task == "cup" else 256, preprocessing="standardize",
                            augmentation="light"),
            epochs={"disc": 5, "cup": 8, "fovea": 6}[task], batch_size=4,
            optimizer=OptimizerConfig(name="adam", lr=1e-3),
            scheduler=SchedulerConfig(name="plateau_reset", patience=3, min_lr=1e-5),
            runtime=runtime,
        )
    if task == "vessel":
        return TrainConfig(
            task=task, preset="cpu",
            model=ModelSpec("vessel_generator", {"base_width": 8, "depth": 4}),
            # + a soft-Dice term: with the pixel BCE alone the thin vessels took twice the epochs
            loss=LossSpec("bce_adversarial", {"adversarial_weight": 0.1, "dice_weight": 1.0}),
            data=DataConfig(input_size=384, preprocessing="standardize", augmentation="light"),
            epochs=3, batch_size=4,
            optimizer=OptimizerConfig(name="adam", lr=1e-3, betas=[0.5, 0.999]),
            scheduler=SchedulerConfig(name="constant"),
            runtime=runtime,
            discriminator=ModelSpec("vessel_discriminator", {"base_width": 8, "output": "image"}),
            discriminator_optimizer=OptimizerConfig(name="adam", lr=1e-3, betas=[0.5, 0.999]),
        )
    if task == "glaucoma":
        return TrainConfig(
            task=task, preset="cpu",
            model=ModelSpec("glaucoma_classifier", {"backbone": photo, "pool_size": 4}),
            loss=LossSpec("bce", {}),
            data=DataConfig(input_size=320, preprocessing="normalize", augmentation="light"),
            epochs=20, batch_size=16,
            optimizer=OptimizerConfig(name="adam", lr=1e-3),
            scheduler=SchedulerConfig(name="plateau_reset", factor=0.1, patience=4, min_lr=1e-5),
            runtime=runtime,
        )
    raise FunduskitError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def preset(task: str, name: str = "cpu") -> TrainConfig:
    """The preset configuration ``name`` (``"cpu"`` or ``"paper"``) of ``task``; a fresh object each call."""
    if task not in TASKS:
        raise FunduskitError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if name == "paper":
        return _paper(task)
    if name == "cpu":
        return _cpu(task)
    raise FunduskitError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


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


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from the dict form written by :func:`save_config`."""
    return from_dict(TrainConfig, data)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (keys in declaration order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


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
