"""Measuring on this machine: peak resident memory, median and interleaved timings, the matmul
peak, and the machine's description (CPU, cores, library versions)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The /proc/cpuinfo flags that change the fastest path and the precision ``auto`` picks.
SPEED_FLAGS: tuple[str, ...] = ("avx512_bf16", "avx512_vnni", "amx_bf16")


def cpu_flags() -> str:
    """``"amx_bf16, avx512_bf16, avx512_vnni"``, or the words for an AVX2-only CPU: what every
    benchmark prints beside its figures."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    words = set(text.split())
    flags = sorted(flag for flag in SPEED_FLAGS if flag in words)
    return ", ".join(flags) or "AVX2 only (no avx512_bf16 / avx512_vnni / amx)"


def interleaved_seconds(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, timed in turns (one call of each per round), so that load
    from other processes falls on all of them alike: their ratio is what it is on a quiet machine."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(max(1, repeats)):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def median_seconds(function: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(dtype, size: int, repeats: int) -> float:  # noqa: ANN001
    """GFLOP/s of an n x n matmul in ``dtype``; n grows from 256 to ``size`` while one product
    takes under half a second (emulated bf16 is thousands of times slower than native)."""
    import torch

    n = 256
    while True:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        seconds = median_seconds(lambda: a @ b, max(2, repeats // 2), 1)
        if n >= size or seconds > 0.5:
            return 2 * n**3 / seconds / 1e9
        n = min(size, n * 2)


def machine_description(threads: int) -> dict[str, Any]:
    """CPU model, cores, library versions, threads."""
    import torch

    from funduskit import __version__
    from funduskit.runtime.device import cpu_has_native_bf16, cpu_kind
    from funduskit.runtime.optimise import winograd_available

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    try:
        import openvino

        openvino_version = openvino.__version__
    except ImportError:
        openvino_version = None
    return {
        "cpu": model, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort_version,
        "funduskit": __version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "avx512": " avx512f" in flags, "native_bf16": cpu_has_native_bf16(), "nnpack_winograd": winograd_available(),
        "kind": cpu_kind(), "cpu_flags": cpu_flags(),
        "openvino": openvino_version,
    }
