"""The one interface the predictor calls a network through: numpy batch in, numpy logits out.

Exported networks (:mod:`funduskit.inference.onnx_backend`, :mod:`funduskit.inference.openvino_backend`)
take and give numpy arrays themselves, so predicting with them never imports torch (0.5 GB of
resident memory on its own, docs/performance.md). A torch module is put behind the same interface
by :class:`TorchNetwork`, on the runtime's device, memory format and autocast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch import nn

    from funduskit.runtime.device import Runtime


class ArrayNetwork(Protocol):
    """``network(x)``: (B, C, S, S) float32 C-contiguous batch -> float32 logits, the network's
    output shape ((B, 1, S, S) maps, (B, 3, G, G) fovea maps or (B, 1) classifier logits)."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class TorchNetwork:
    """A torch module as an :class:`ArrayNetwork`: the batch goes to the runtime's device (and
    memory format), runs in inference mode under the runtime's autocast, and comes back as float32
    on the CPU.

    Args:
        module: maps a (B, C, S, S) float tensor to logits; kept as ``module``, in eval mode.
        runtime: where and how it runs.
    """

    def __init__(self, module: nn.Module, runtime: Runtime):
        self.module = module.eval()
        self.runtime = runtime

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), self.runtime.autocast():
            logits = self.module(self.runtime.to_device(torch.from_numpy(np.ascontiguousarray(x))))
        return logits.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"TorchNetwork({type(self.module).__name__} on {self.runtime.describe()})"


def as_float32_batch(x: Any) -> np.ndarray:
    """A C-contiguous float32 numpy copy (or view) of a batch: a numpy array, or a torch tensor on
    any device (for callers that hold tensors; torch is not imported here)."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().float().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def as_array_network(network: Any, runtime: Runtime) -> ArrayNetwork:
    """``network`` as an :class:`ArrayNetwork`: a torch module wrapped in :class:`TorchNetwork`,
    anything else (an exported network) as it is. (A torch module exists only once torch is
    imported, so the check imports nothing.)"""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(network, torch.nn.Module):
        return TorchNetwork(network, runtime)
    return network
