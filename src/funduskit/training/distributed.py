"""Multi-process training with ``torch.distributed``: one process per device, launched by ``torchrun``.

``funduskit train ... --nproc N`` (or ``torchrun --nproc_per_node N -m funduskit train ...``)
starts N copies of the same training; each reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from
the environment ``torchrun`` sets (:func:`distributed_context`). What changes from one process:

- the networks are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients
  averaged across processes after every backward pass), batch norm synchronised on CUDA
  (:func:`wrap_model`);
- every process walks the same seeded epoch order and takes its share of each *global* batch
  (:class:`funduskit.training.data.EpochBatchSampler` with ``rank`` / ``world_size``), so the
  global batch, the order and every augmentation are those of one process with the same seed;
- validation is split between the processes and gathered, so every process scores the whole
  validation set and the schedule steps on the same metric; training losses are averaged
  across processes (:meth:`DistributedContext.mean`);
- checkpoints, metrics and the run directory's files are written by rank 0 alone; the others
  wait for them (:meth:`DistributedContext.barrier`). Each process's random generators go into
  the checkpoint, so ``--resume`` gives what an uninterrupted run gives, as with one process.

Processes use gloo on CPU and nccl on CUDA. On CPU torch's :class:`~torch.nn.SyncBatchNorm` is
not available ("SyncBatchNorm layers only work with GPU modules"), so each process normalises
with its own share of the batch there (``docs/decisions.md``, "Multi-process training").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from funduskit.core.errors import FunduskitError

#: The environment variables torchrun sets for every process it starts.
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Which process of a multi-process run this is (``world_size == 1``: a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the process that writes the run directory (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every process gets here (a no-op in one process)."""
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, values: Mapping[str, float]) -> dict[str, float]:
        """The mean over processes of each value (every process gives the same keys)."""
        if not self.enabled or not values:
            return dict(values)
        keys = sorted(values)  # the same order in every process
        tensor = torch.tensor([float(values[key]) for key in keys], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        means = {key: float(value) / self.world_size for key, value in zip(keys, tensor.tolist())}
        return {key: means[key] for key in values}

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (picklable objects)."""
        if not self.enabled:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def share_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers of ``model`` (batch-norm running statistics), so that
        all validate the network rank 0 saves."""
        if self.enabled:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def shard(self, n: int) -> range:
        """This process's contiguous share of ``range(n)`` (shares differ in size by at most one)."""
        start = self.rank * n // self.world_size
        return range(start, (self.rank + 1) * n // self.world_size)


def distributed_context(device_type: str = "cpu") -> DistributedContext:
    """The context of this process: from torchrun's environment, joining the process group
    (gloo on CPU, nccl on CUDA) on first call; a single-process context without it.

    Raises:
        FunduskitError: torchrun's variables are incomplete.
    """
    present = [name for name in RANK_VARIABLES if name in os.environ]
    if not present or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return DistributedContext()
    if len(present) < len(RANK_VARIABLES):
        raise FunduskitError(f"multi-process training needs {', '.join(RANK_VARIABLES)} in the environment "
                             f"(torchrun sets them); only {', '.join(present)} are set")
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.distributed.init_process_group(backend=backend)
    return DistributedContext(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                              local_rank=int(os.environ["LOCAL_RANK"]), backend=backend)


def close_process_group() -> None:
    """Leave the process group (if this process joined one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def process_device(device: torch.device, context: DistributedContext) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` on a multi-GPU node, else ``device``."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """``model`` in DistributedDataParallel (batch norm synchronised on CUDA), or as it is in one
    process. The wrapped network's own attributes stay on ``wrapped.module`` (:func:`unwrap`)."""
    if not context.enabled or not any(parameter.requires_grad for parameter in model.parameters()):
        return model
    if next(model.parameters()).device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[context.local_rank])
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``funduskit ARGV...`` in ``nproc`` processes on this machine under torchrun
    (``python -m torch.distributed.run --standalone``); returns its exit status.

    Each process gets ``threads // nproc`` of this machine's torch threads unless ``OMP_NUM_THREADS``
    is set (torchrun would otherwise give each one thread).
    """
    if nproc < 1:
        raise FunduskitError(f"--nproc must be at least 1, got {nproc}")
    environment = dict(os.environ)
    environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "funduskit", *argv]
    return subprocess.call(command, env=environment)
