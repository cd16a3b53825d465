"""Which backend runs exported networks (``model.onnx``) under ``--backend auto``: measured once per
machine and model set, and remembered.

Both backends give the same answers in fp32 (docs/performance.md: identical masks, vCDR, fovea and
probabilities on the starter models over real photographs), so ``auto`` may pick on speed alone;
which is faster depends on the CPU (OpenVINO fp32 was 1.5x ONNX Runtime on an AMX / AVX-512 BF16
Intel Xeon). The first prediction with a model set on a machine times one network per task on both, at
batch 1, three interleaved rounds after a warm-up (a few seconds for the starter models), and
writes the choice to ``CACHE/backends.json``; later runs read it. The cache folder is
``$FUNDUSKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/funduskit``, else ``~/.cache/funduskit``. Delete
the file to measure again; ``--backend onnx`` or ``openvino`` skips the choice.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from funduskit.core.files import atomic_write_text
from funduskit.inference.openvino_backend import OpenVinoNetwork, openvino_available

#: Environment variable naming the cache folder.
CACHE_VARIABLE = "FUNDUSKIT_CACHE_DIR"
CACHE_FILE = "backends.json"
#: The CPU flags that change which backend is fastest (named in the cache key).
SPEED_FLAGS = ("avx512_bf16", "avx512_vnni", "amx_bf16", "avx512f", "avx2")


def cache_dir() -> Path:
    """Where funduskit remembers per-machine measurements."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "funduskit"


def machine_key(threads: int) -> str:
    """The CPU model, its speed-relevant flags, the thread count and the backends' versions."""
    import onnxruntime
    import openvino

    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = [flag for flag in SPEED_FLAGS if f" {flag}" in text]
    return f"{model} [{' '.join(flags)}] {threads} thread(s), onnxruntime {onnxruntime.__version__}, " \
           f"openvino {openvino.__version__}"


def choose_export_backend(networks: Sequence[tuple[Path, int]], threads: int) -> str:
    """``"openvino"`` or ``"onnx"``, whichever ran ``networks`` (``(model.onnx, input side)`` pairs,
    one per task) faster on this machine; ``"onnx"`` when OpenVINO is not installed."""
    if not openvino_available() or not networks:
        return "onnx"
    threads = threads if threads > 0 else torch.get_num_threads()
    models = hashlib.sha256(json.dumps(sorted((path.name, path.stat().st_size, side) for path, side in networks))
                            .encode()).hexdigest()[:16]
    key = f"{machine_key(threads)} / models {models}"
    path = cache_dir() / CACHE_FILE
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache and cache[key].get("backend") in ("onnx", "openvino"):
        return cache[key]["backend"]
    seconds = time_backends(networks, threads)
    choice = min(seconds, key=seconds.get)  # type: ignore[arg-type]
    cache[key] = {"backend": choice, "seconds": seconds, "measured": datetime.now(timezone.utc).isoformat()}
    try:
        atomic_write_text(path, json.dumps(cache, indent=1) + "\n")
    except OSError:  # a read-only home: measured again next time, still the right choice now
        pass
    return choice


def time_backends(networks: Sequence[tuple[Path, int]], threads: int, rounds: int = 3) -> dict[str, float]:
    """Seconds one pass over ``networks`` takes (batch 1) on ONNX Runtime and on OpenVINO (fp32):
    the median of ``rounds`` interleaved passes after a warm-up."""
    from funduskit.inference.onnx_backend import OnnxNetwork

    backends = {"onnx": lambda path: OnnxNetwork(path, threads=threads),
                "openvino": lambda path: OpenVinoNetwork(path, threads=threads, precision="fp32")}
    loaded = {name: [(make(path), side) for path, side in networks] for name, make in backends.items()}
    inputs = [torch.zeros(1, _channels(network), side, side) for network, side in loaded["onnx"]]
    passes: dict[str, list[float]] = {name: [] for name in loaded}
    with torch.inference_mode():
        for round_index in range(rounds + 1):
            for name, items in loaded.items():
                started = time.perf_counter()
                for (network, _), x in zip(items, inputs):
                    network(x)
                if round_index:  # the first round warms up
                    passes[name].append(time.perf_counter() - started)
    return {name: float(np.median(values)) for name, values in passes.items()}


def _channels(network) -> int:  # noqa: ANN001 - an OnnxNetwork
    channels = network.input_shape[1]
    return channels if isinstance(channels, int) else 3
