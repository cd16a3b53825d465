"""The surface every funduskit network shares: input checking and ``predict`` (SMP style).

``forward`` returns logits (pair it with ``BCEWithLogitsLoss``); ``predict`` applies the sigmoid
under ``torch.inference_mode()`` and gives probabilities in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from funduskit.core.errors import FunduskitError

__all__ = ["FunduskitModel", "InputShapeError"]


class InputShapeError(FunduskitError, ValueError):
    """An input tensor whose channel count or size the network cannot take."""


class FunduskitModel(nn.Module):
    """Base class: subclasses set ``in_channels``, ``input_multiple`` and ``input_description``.

    Attributes:
        in_channels: channels the network takes.
        input_multiple: height and width must be multiples of this (the total down-sampling).
        input_description: what the channels are, for error messages.
    """

    in_channels: int
    input_multiple: int
    input_description: str = ""

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`InputShapeError` naming a shape that would work unless ``x`` is (B, C, H, W)
        with ``C == in_channels`` and ``H``, ``W`` positive multiples of ``input_multiple``.

        Skipped while tracing or exporting (the shapes are then fixed by the example input).
        """
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return
        shape = tuple(x.shape)
        multiple = self.input_multiple
        if len(shape) == 4 and shape[1] == self.in_channels and all(s > 0 and s % multiple == 0 for s in shape[2:]):
            return
        batch = shape[0] if len(shape) == 4 else 1
        spatial = shape[-2:] if len(shape) >= 2 else (multiple, multiple)
        smaller = tuple(max(multiple, (s // multiple) * multiple) for s in spatial)
        larger = tuple(max(multiple, math.ceil(s / multiple) * multiple) for s in spatial)
        options = {(batch, self.in_channels, *smaller), (batch, self.in_channels, *larger)}
        suggestion = " or ".join(str(option) for option in sorted(options))
        what = f" ({self.input_description})" if self.input_description else ""
        raise InputShapeError(
            f"{type(self).__name__} takes input of shape (B, {self.in_channels}, H, W){what} with H and W "
            f"multiples of {multiple}; got {shape}. Resize or pad to e.g. {suggestion}."
        )

    def predict(self, x: Tensor) -> Tensor:
        """Probabilities: ``sigmoid(forward(x))`` in eval mode under ``torch.inference_mode()``.

        The training/eval mode the model was in is restored afterwards.
        """
        self.check_input(x)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return torch.sigmoid(self(x))
        finally:
            self.train(was_training)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
