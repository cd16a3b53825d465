"""Where a run computes and how fast: device, threads, memory format, bf16 autocast.

On CPUs bf16 autocast is only worth it (and only accurate enough to be the default) with native
bf16 instructions (AVX-512 BF16 or AMX); on others, e.g. AVX2-only cores, it is emulated and
slower than fp32, so ``precision="auto"`` turns it off there. For *training* on a CPU ``auto`` means
fp32 on every kind: bf16 autocast changed what the small networks learned (the demo's glaucoma
AUROC 0.80 under bf16 vs 0.88 in fp32, docs/decisions.md "Precision"), and a model must not depend
on which CPU trained it. On CUDA ``auto`` is bf16 autocast where the GPU supports it. channels_last speeds up the depthwise
convolutions of EfficientNet several times on CPU (see ``docs/training.md``).

torch is imported only where a torch network needs it: :func:`resolve_runtime` with
``torch_free=True`` decides the runtime of exported networks (ONNX Runtime, OpenVINO) without it,
so ``funduskit predict`` on the starter models does not load torch's 0.5 GB (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

from funduskit.core.config import PRECISIONS, RuntimeConfig
from funduskit.core.errors import FunduskitError

#: What ``runtime.precision`` (:data:`funduskit.core.config.PRECISIONS`) resolves to.
RESOLVED_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 or AMX)."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def cpu_kind() -> str:
    """The CPU kind whose fastest path and targets differ: ``"avx512-bf16"`` where bf16 is native
    (AVX-512 BF16 / AMX, which come with VNNI), else ``"avx2"``."""
    return "avx512-bf16" if cpu_has_native_bf16() else "avx2"


@dataclass(frozen=True)
class Runtime:
    """The resolved runtime of a run (what :func:`resolve_runtime` decided).

    ``device`` is a device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``; a ``torch.device`` given is
    kept as its name), which torch's ``.to(...)`` takes as it is."""

    device: str
    precision: str  # "fp32" or "bf16" (autocast)
    channels_last: bool
    threads: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", str(self.device))
        if self.precision not in RESOLVED_PRECISIONS:
            raise ValueError(f"a resolved precision is one of {', '.join(RESOLVED_PRECISIONS)}, not {self.precision!r}")

    @property
    def bf16(self) -> bool:
        """True when the networks run under bf16 autocast."""
        return self.precision == "bf16"

    @property
    def device_type(self) -> str:
        """``"cpu"`` or ``"cuda"``: the device name without its index."""
        return self.device.partition(":")[0]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on this device when enabled, else a no-op context."""
        if not self.bf16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (and memory format)."""
        import torch

        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Move an input batch to the device; 4-D tensors in channels_last when enabled."""
        import torch

        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def describe(self) -> str:
        parts = [self.device_type, "bf16 autocast" if self.bf16 else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        if self.device_type == "cpu":
            parts.append(f"{self.threads} thread(s)")
        return ", ".join(parts)


def resolve_runtime(config: RuntimeConfig, *, training: bool = False, torch_free: bool = False) -> Runtime:
    """Apply ``config``: pick the device, set torch's thread count, decide on bf16.

    Args:
        config: the run's runtime settings.
        training: the runtime of a training run (``precision="auto"`` is then fp32 on CPU; see the
            module doc); else of prediction.
        torch_free: the runtime of exported networks alone, decided without importing torch: the
            device is the CPU unless CUDA is asked for or (``"auto"``) ONNX Runtime has its CUDA
            provider; ``threads=0`` means this process's CPUs; ``precision="auto"`` is fp32 (the
            exported networks' own precision is the backend's choice).
    """
    if config.precision not in PRECISIONS:
        raise FunduskitError(f"runtime.precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
    if torch_free:
        return _exported_runtime(config)
    import torch

    if config.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise FunduskitError("runtime.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    precision = config.precision
    if precision == "auto":
        bf16 = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or (
            device.type == "cpu" and not training and cpu_has_native_bf16()
        )
        precision = "bf16" if bf16 else "fp32"
    return Runtime(device=str(device), precision=precision, channels_last=config.channels_last,
                   threads=torch.get_num_threads())


def _exported_runtime(config: RuntimeConfig) -> Runtime:
    device = config.device
    if device == "auto":
        device = "cuda" if _onnxruntime_has_cuda() else "cpu"
    threads = config.threads if config.threads > 0 else _usable_cpus()
    precision = "fp32" if config.precision == "auto" else config.precision
    return Runtime(device=device, precision=precision, channels_last=config.channels_last, threads=threads)


def _usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _onnxruntime_has_cuda() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
