"""What ``runtime.precision: auto`` means on each CPU kind, and the bf16 path forced on any CPU.

CI and users' machines come as AVX2-only CPUs (bf16 emulated) and CPUs with AVX-512 BF16; the
choice is tested for both kinds by pretending to be the other one, and the bf16 training path is
forced (``runtime.precision: bf16``), so that both stay covered whichever kind runs the tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from training_helpers import samples, tiny_config, tiny_data  # noqa: F401 (fixtures)

from funduskit.core.config import RuntimeConfig
from funduskit.data.sample import Sample
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.runtime import device as runtime_module
from funduskit.runtime.device import cpu_has_native_bf16, resolve_runtime
from funduskit.training import fit


@pytest.mark.parametrize("native", [False, True], ids=["avx2-only", "native-bf16"])
def test_auto_precision_on_cpu(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: native)
    config = RuntimeConfig(device="cpu", threads=1)
    assert resolve_runtime(config).bf16 is native  # prediction: bf16 where it is native
    assert resolve_runtime(config, training=True).bf16 is False  # training: fp32 on every CPU kind
    for training in (False, True):  # an explicit choice is kept
        assert resolve_runtime(RuntimeConfig(device="cpu", threads=1, precision="bf16"), training=training).bf16
        assert not resolve_runtime(RuntimeConfig(device="cpu", threads=1, precision="fp32"), training=training).bf16


def test_this_cpu_is_named_by_what_torch_reports() -> None:
    flags = {check: bool(getattr(torch.cpu, check, lambda: False)())
             for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")}
    assert cpu_has_native_bf16() is any(flags.values())


def test_training_under_forced_bf16_autocast_learns_the_same_first_step(samples: list[Sample],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """One epoch of the disc recipe in fp32 and under bf16 autocast (emulated where the CPU lacks it):
    the bf16 run really rounds (its loss is not fp32's to the bit) and agrees with fp32 to bf16's precision."""
    losses = {}
    for precision in ("fp32", "bf16"):
        config = tiny_config("disc", epochs=1, **{"data.input_size": 64, "runtime.precision": precision})
        result = fit(config, samples, tmp_path / precision, show_progress=False)
        losses[precision] = result.history[0]["train_loss"]
        assert math.isfinite(losses[precision])
        assert load_checkpoint(tmp_path / precision)["config"]["runtime"]["precision"] == precision
    assert losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
