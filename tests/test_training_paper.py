"""The paper preset builds every network at the report's size and takes one training step.

The report's batch sizes stay in the configuration (checked); the step itself runs at batch 1,
since a full batch of 64 photographs at 1024 x 1024 would take minutes on a CPU.
"""

from __future__ import annotations

import pytest
import torch

from funduskit.core.config import preset
from funduskit.runtime.device import Runtime
from funduskit.training.loop import build_parts
from funduskit.training.tasks import get_task

PAPER = {  # task: (input size, batch size of the report)
    "vessel": (640, 4),
    "disc": (640, 4),  # the cup network is the same architecture
    "fovea": (640, 4),
    "glaucoma": (1024, 64),
}


def _batch(task: str, channels: int, size: int) -> dict[str, torch.Tensor]:
    inputs = torch.randn(1, channels, size, size)
    if task == "fovea":
        target = torch.zeros(1, 3, size // 8, size // 8)
        target[0, :, 40, 41] = torch.tensor([1.0, 0.25, 0.75])
    elif task == "glaucoma":
        target = torch.ones(1)
    else:
        target = (torch.rand(1, 1, size, size) > 0.9).float()
    return {"input": inputs, "target": target}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(PAPER))
def test_paper_preset_builds_at_full_size_and_takes_a_step(task: str) -> None:
    config = preset(task, "paper")
    size, batch_size = PAPER[task]
    assert (config.data.input_size, config.batch_size) == (size, batch_size)
    runtime = Runtime(device=torch.device("cpu"), precision="fp32", channels_last=config.runtime.channels_last,
                      threads=torch.get_num_threads())
    adapter = get_task(task)
    parts = build_parts(adapter, config, runtime)
    model = parts.models["model"]
    head = next(p for name, p in reversed(list(model.named_parameters())) if p.requires_grad)
    before = head.detach().clone()
    losses = adapter.train_step(parts, _batch(task, model.in_channels, size))
    assert all(torch.isfinite(torch.tensor(value)) for value in losses.values())
    assert not torch.equal(before, head.detach()), "the step did not change the weights"
    if task == "vessel":
        assert "adversarial" in losses and "discriminator" in losses
