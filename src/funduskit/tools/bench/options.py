"""What the benchmark measures: the modes, networks, ensembles, photograph sizes and targets, and
:class:`BenchOptions` (the command-line options of ``funduskit bench``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

#: Networks timed one by one (the cup network is the disc network's architecture).
NETWORK_TASKS: tuple[str, ...] = ("vessel", "disc", "fovea", "glaucoma")
MODES: tuple[str, ...] = ("baseline", "torch", "onnx", "openvino")
#: The modes that run the exported ONNX file of a network (exported once, shared by both).
EXPORTED_MODES: tuple[str, ...] = ("onnx", "openvino")
SINGLE_MODEL: dict[str, int] = {"vessel": 1, "disc": 1, "cup": 1, "fovea": 1, "glaucoma": 1}
#: The report's ensembles (the vessel map is computed once).
REPORT_ENSEMBLE: dict[str, int] = {"vessel": 1, "disc": 4, "cup": 2, "fovea": 10, "glaucoma": 8}
#: The two REFUGE cameras, (height, width).
CAMERA_SIZES: tuple[tuple[int, int], ...] = ((2056, 2124), (1634, 1634))
#: Tiny networks (the tests' size) for ``--preset tiny``.
TINY_KWARGS: dict[str, dict[str, Any]] = {
    "vessel": {"base_width": 4, "depth": 2},
    "disc": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8, 8]},
    "cup": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8, 8]},
    "fovea": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8]},
    "glaucoma": {"backbone": "test_efficientnet"},
}
#: Issue 16's targets per CPU kind (:func:`funduskit.runtime.device.cpu_kind`): the single-model
#: pipeline's speed-up over the eager fp32 baseline and its seconds per photograph, the report
#: ensemble's and the fast ensemble's seconds per photograph, the report ensemble's peak memory.
TARGETS_BY_KIND: dict[str, dict[str, float]] = {
    "avx512-bf16": {"pipeline_speedup": 5.0, "pipeline_seconds": 1.0, "ensemble_seconds": 4.0,
                    "fast_ensemble_seconds": 0.5, "ensemble_memory_mb": 2500.0},
    "avx2": {"pipeline_speedup": 3.0, "pipeline_seconds": 2.0, "ensemble_seconds": 8.0,
             "fast_ensemble_seconds": 1.0, "ensemble_memory_mb": 2500.0},
}


@dataclass
class BenchOptions:
    """What ``funduskit bench`` measures (the command-line options)."""

    preset: str = "paper"
    size_scale: float = 1.0
    threads: int = 0
    repeats: int = 3
    warmup: int = 1
    batch: int = 4
    photos: tuple[int, int] = (10, 200)
    ensemble: dict[str, int] = field(default_factory=lambda: dict(REPORT_ENSEMBLE))
    modes: tuple[str, ...] = MODES
    isolate: bool = True
    quick: bool = False
    matmul_size: int = 2048
    precision: str = "auto"  # of the optimised torch mode: auto (bf16 where native), fp32 or bf16

    def __post_init__(self) -> None:
        if self.threads <= 0:
            self.threads = os.cpu_count() or 1
