"""Where the paper-preset networks spend their time: OpenVINO's per-operator profile (fp32, batch 1,
2 threads), grouped by operator kind, beside each network's FLOPs and the fraction of the measured
fp32 matmul peak the whole network reaches.

The networks are ``funduskit bench``'s (the paper preset's architectures and sizes, untrained:
timing does not depend on the weights), exported to ONNX and compiled by OpenVINO with
``PERF_COUNT``; each row is the share of the network's summed operator time (median of
``--repeats`` runs) spent in one kind of operator: ``GroupConvolution`` is the depthwise convolutions
of the EfficientNets, ``Convolution`` the dense ones (1x1 expansions and projections, the U-Net's
3x3), and so on.

Usage::

    python benchmarks/operators.py [--repeats 5] [--tasks vessel,disc,glaucoma]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from machine import cpu_flags


def profile(path: Path, shape: Sequence[int], threads: int, repeats: int) -> tuple[dict[str, float], float]:
    """Milliseconds per operator kind (median over ``repeats``) and the median wall milliseconds."""
    import time

    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
        "PERF_COUNT": True})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    request.infer({0: x})
    per_kind: dict[str, list[float]] = collections.defaultdict(list)
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer({0: x})
        walls.append((time.perf_counter() - start) * 1000)
        totals: dict[str, float] = collections.defaultdict(float)
        for item in request.profiling_info:
            if item.status == item.Status.EXECUTED:
                totals[item.node_type] += item.real_time.total_seconds() * 1000
        for kind, value in totals.items():
            per_kind[kind].append(value)
    return {kind: statistics.median(values) for kind, values in per_kind.items()}, statistics.median(walls)


def convolution_gflop(network, shape: Sequence[int]) -> dict[str, float]:  # noqa: ANN001
    """GFLOP of the dense (``Convolution``) and grouped / depthwise (``GroupConvolution``) 2-D
    convolutions of one forward pass, counted from each layer's output size (2 per multiply-add)."""
    import torch
    from torch import nn

    found: dict[str, float] = collections.defaultdict(float)

    def count(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:  # noqa: ANN001
        kind = "GroupConvolution" if module.groups > 1 else "Convolution"
        per_output = 2 * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        found[kind] += per_output * output.numel() / 1e9

    handles = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            network(torch.zeros(shape))
    finally:
        for handle in handles:
            handle.remove()
    return dict(found)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", default="vessel,disc,glaucoma", help="networks of funduskit bench")
    args = parser.parse_args(argv)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from funduskit.tools.bench import BenchOptions, build_network, matmul_gflops, task_config
    from funduskit.tools.export import export_network

    torch.set_num_threads(args.threads)
    options = BenchOptions(threads=args.threads)
    peak = matmul_gflops(torch.float32, 2048, 3)
    print(f"\nCPU flags: {cpu_flags()}; {os.cpu_count()} cores, {args.threads} threads; measured fp32 matmul peak "
          f"{peak:.0f} GFLOP/s; paper preset networks, OpenVINO fp32, batch 1\n")
    print("| network | input | GFLOP | ms | % of fp32 peak | dense conv: share of time, % of peak "
          "| depthwise conv: share of time, % of peak | time by operator kind (share of summed operator time) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for task in args.tasks.split(","):
            network = build_network(task, options)
            size = task_config(task, options).data.input_size
            shape = (1, network.in_channels, size, size)
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                network(torch.zeros(shape))
            gflop = counter.get_total_flops() / 1e9
            path = export_network(network, Path(folder) / f"{task}.onnx", input_size=size)
            kinds, wall = profile(path, shape, args.threads, args.repeats)
            total = sum(kinds.values())
            top = sorted(kinds.items(), key=lambda item: -item[1])
            shares = ", ".join(f"{kind} {value / total:.0%}" for kind, value in top[:5] if value / total >= 0.02)
            achieved = gflop / (wall / 1000)
            convolutions = convolution_gflop(network, shape)
            cells = []
            for kind in ("Convolution", "GroupConvolution"):
                milliseconds = kinds.get(kind, 0.0)
                cells.append(f"{milliseconds / total:.0%}, {convolutions.get(kind, 0) / (milliseconds / 1000) / peak:.0%}"
                             if milliseconds else "-")
            print(f"| {task} | {'x'.join(map(str, shape[1:]))} | {gflop:.1f} | {wall:.0f} | {achieved / peak:.0%} | "
                  f"{cells[0]} | {cells[1]} | {shares} |", flush=True)
    print(f"\ncommand: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
