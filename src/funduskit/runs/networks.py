"""Networks rebuilt from configurations and checkpoints: what training starts from and what
prediction loads back.

A checkpoint carries its run's resolved configuration, so :func:`load_trained_model` rebuilds the
network from the checkpoint alone (prediction, the vessel-map input of the disc/cup/fovea runs,
the frozen glaucoma backbone). :func:`build_model` makes a configuration's network with its
starting weights (timm's, a local encoder file, a checkpoint to fine-tune from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from funduskit.core.config import TrainConfig, config_from_dict
from funduskit.core.errors import DataError, FunduskitError
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.runs.layout import checkpoint_file

TWO_BRANCH_MODELS = ("disc_cup_segmenter", "fovea_localiser")
ENCODER_PREFIXES = (("photo_encoder.", "backbone."),)
"""Source -> target name prefixes also tried by :func:`load_matching_weights`: a disc/cup or fovea
network's photo encoder initialises a glaucoma classifier's backbone of the same timm architecture."""


def _weight_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Constructor arguments that ask for starting weights (never stored in ``config.model``)."""
    init = config.init
    name = config.model.name
    kwargs: dict[str, Any] = {}
    if init.pretrained:
        if name == "vessel_generator":
            raise FunduskitError("the vessel generator (a plain U-Net) has no pretrained weights; drop --pretrained")
        kwargs["pretrained"] = True
    if init.encoder_weights:
        if name in TWO_BRANCH_MODELS:
            kwargs["photo_encoder_weights"] = init.encoder_weights
        elif name == "glaucoma_classifier":
            kwargs["backbone_weights"] = init.encoder_weights
        else:
            raise FunduskitError(f"{name} has no timm encoder to load --encoder-weights into")
    return kwargs


def build_model(config: TrainConfig, role: str = "model") -> nn.Module:
    """The network ``role`` (``"model"`` or ``"discriminator"``) of ``config``, with its starting weights.

    Starting weights, in order: timm's (``init.pretrained``) or a local encoder file
    (``init.encoder_weights``); then a funduskit checkpoint to fine-tune from (``init.checkpoint``,
    every tensor whose name and shape match); then, for the glaucoma classifier, the frozen
    backbone (``init.backbone_checkpoint``).
    """
    from funduskit.models import create_model

    if role == "discriminator":
        if config.discriminator is None:
            raise FunduskitError(f"the {config.task} configuration has no discriminator")
        return create_model(config.discriminator.name, **config.discriminator.kwargs)
    model = create_model(config.model.name, **config.model.kwargs, **_weight_kwargs(config))
    if config.init.checkpoint:
        load_matching_weights(model, config.init.checkpoint)
    if config.init.backbone_checkpoint:
        load_glaucoma_backbone(model, config.init.backbone_checkpoint)
    return model


def load_matching_weights(model: nn.Module, checkpoint: str | Path, role: str = "model") -> tuple[int, int]:
    """Copy into ``model`` every tensor of a checkpoint's network whose name and shape match.

    Fine-tuning from a related network (a disc model for a cup model, an earlier fovea model)
    keeps what fits and leaves the rest as initialised; a segmenter's photo encoder also fits a
    glaucoma classifier's backbone (:data:`ENCODER_PREFIXES`). Returns ``(copied, total in model)``.

    Raises:
        DataError: the checkpoint holds no tensor that fits.
    """
    path = checkpoint_file(checkpoint)
    state = load_checkpoint(path)
    source = state["models"].get(role)
    if source is None:
        raise DataError(path, f"holds no {role!r} network (it holds {', '.join(state['models'])})")
    target = model.state_dict()
    renamed = dict(source)
    for source_prefix, target_prefix in ENCODER_PREFIXES:
        renamed.update({target_prefix + key[len(source_prefix):]: value
                        for key, value in source.items() if key.startswith(source_prefix)})
    matching = {key: value for key, value in renamed.items() if key in target and target[key].shape == value.shape}
    if not matching:
        raise DataError(path, f"no tensor fits a {type(model).__name__}",
                        fix="give a checkpoint of the same network (e.g. a disc run for a cup run)")
    model.load_state_dict(matching, strict=False)
    return len(matching), len(target)


def load_glaucoma_backbone(model: nn.Module, checkpoint: str | Path) -> None:
    """The report's frozen mode: load everything but the last layer, then freeze it (BatchNorm too).

    ``checkpoint`` is a funduskit glaucoma run (its ``best.pt``) or any file the classifier's
    ``load_backbone`` accepts (a state dict with ``backbone.*`` keys, or a timm classifier).
    """
    if not hasattr(model, "freeze_backbone"):
        raise FunduskitError("--backbone applies to the glaucoma classifier only")
    path = checkpoint_file(checkpoint)
    try:
        state = load_checkpoint(path)
    except DataError:
        state = None
    if state is None:
        model.load_backbone(path)  # type: ignore[attr-defined]
    else:
        source = state["models"]["model"]
        frozen = {key: value for key, value in source.items() if not key.startswith("fc.")}
        missing, unexpected = model.load_state_dict(frozen, strict=False)
        not_loaded = [key for key in missing if not key.startswith("fc.")]
        if not_loaded or unexpected:
            raise DataError(path, f"does not fit this glaucoma classifier (missing {not_loaded[:3]}, "
                                  f"unexpected {list(unexpected)[:3]})",
                            fix="use the same backbone in both runs")
    model.freeze_backbone()  # type: ignore[attr-defined]


def load_trained_model(checkpoint: str | Path, role: str = "model", *,
                       map_location: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig]:
    """A trained network and its run's configuration, from a checkpoint (or a run directory's best.pt).

    Example:
        >>> model, config = load_trained_model("runs/disc-fold0")     # doctest: +SKIP
        >>> config.data.input_size, config.data.preprocessing          # doctest: +SKIP
        (320, 'standardize')
    """
    from funduskit.models import create_model

    path = checkpoint_file(checkpoint)
    state = load_checkpoint(path, map_location=map_location)
    config = config_from_dict(state["config"])
    spec = config.model if role == "model" else config.discriminator
    if spec is None or role not in state["models"]:
        raise DataError(path, f"holds no {role!r} network")
    model = create_model(spec.name, **spec.kwargs)
    model.load_state_dict(state["models"][role])
    model.eval()
    return model, config
