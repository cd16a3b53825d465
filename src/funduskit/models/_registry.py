"""Model registry: factories register by name, :func:`create_model` builds by name (timm style)."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from funduskit.core.errors import FunduskitError

__all__ = ["UnknownModelError", "create_model", "list_models", "model_class", "register_model"]

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}

#: The modules whose factories register on import; imported before the first lookup, since the
#: package itself imports its submodules lazily.
_MODEL_MODULES = ("funduskit.models.two_branch", "funduskit.models.glaucoma", "funduskit.models.vessel_gan")


def _import_model_modules() -> None:
    for module in _MODEL_MODULES:
        importlib.import_module(module)

FactoryT = TypeVar("FactoryT", bound=Callable[..., nn.Module])


class UnknownModelError(FunduskitError, ValueError):
    """A model name that is not registered, or an argument the model does not take."""


def register_model(factory: FactoryT) -> FactoryT:
    """Register ``factory`` under its function name.

    The factory takes keyword arguments only and is annotated with the class it returns; that
    class's constructor lists the accepted arguments, which :func:`create_model` checks.
    """
    name = factory.__name__
    if name in _FACTORIES:
        raise ValueError(f"model {name!r} is registered twice ({_FACTORIES[name].__module__}, {factory.__module__})")
    _FACTORIES[name] = factory
    return factory


def list_models() -> list[str]:
    """The registered model names, sorted."""
    _import_model_modules()
    return sorted(_FACTORIES)


def model_class(name: str) -> type[nn.Module]:
    """The class that ``create_model(name)`` returns (from the factory's return annotation)."""
    factory = _factory(name)
    return typing.get_type_hints(factory)["return"]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered network by name.

    Args:
        name: one of :func:`list_models` (``"disc_cup_segmenter"``, ``"fovea_localiser"``,
            ``"vessel_generator"``, ``"vessel_discriminator"``, ``"glaucoma_classifier"``).
        **kwargs: constructor arguments of the model class; they override the factory defaults.

    Returns:
        The network, randomly initialised unless weights were asked for.

    Raises:
        UnknownModelError: the name is not registered, or an argument is not accepted; the
            message lists what is.

    Example:
        >>> from funduskit.models import create_model
        >>> net = create_model("fovea_localiser", photo_encoder="efficientnet_b0")
        >>> net.output_reduction
        8
    """
    factory = _factory(name)
    accepted = _accepted_arguments(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UnknownModelError(
            f"model {name!r} does not take argument(s) {', '.join(unknown)}; it accepts: {', '.join(accepted)}"
        )
    return factory(**kwargs)


def _factory(name: str) -> Callable[..., nn.Module]:
    _import_model_modules()
    try:
        return _FACTORIES[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def _accepted_arguments(name: str) -> list[str]:
    parameters = inspect.signature(model_class(name)).parameters.values()
    return [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
