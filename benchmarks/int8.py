"""OpenVINO int8 (NNCF post-training quantisation) against OpenVINO fp32 on the starter networks:
the networks' own latency, one photograph's input, 2 threads.

A speed probe, not a backend: each network's (1, C, S, S) input at its export size, calibrated on
8 random inputs (activation ranges of random inputs are not a photograph's, so the answers are not
compared here); per-channel weights, NNCF's defaults (``nncf.quantize``, preset performance). It tells
whether int8 is worth wiring into ``--backend openvino`` on the CPU at hand (docs/performance.md).

Usage::

    pip install nncf          # not a funduskit dependency
    python benchmarks/int8.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from machine import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "src" / "funduskit" / "starter_models"


def latency(core, model, inputs: Sequence[np.ndarray], seconds: float, threads: int) -> float:  # noqa: ANN001
    """Mean seconds of one inference of the compiled ``model`` over ``inputs``, for ``seconds``."""
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                                                 "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    for array in inputs[:2]:
        request.infer({0: array})
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        request.infer({0: inputs[count % len(inputs)]})
        count += 1
    return (time.perf_counter() - start) / count


def nncf_and_openvino():  # noqa: ANN201 - (module, module) or None
    """``(nncf, openvino)``, or None after printing why the benchmark is skipped (NNCF is not a
    funduskit dependency)."""
    try:
        import nncf
        import openvino as ov
    except ImportError as error:
        print(f"skipped: {error.name} is not installed (pip install nncf)")
        return None
    return nncf, ov


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per network and precision")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    modules = nncf_and_openvino()
    if modules is None:
        return 0
    nncf, ov = modules
    core = ov.Core()
    print(f"\nOpenVINO {ov.__version__}, NNCF {nncf.__version__}; CPU flags: {cpu_flags()}; {os.cpu_count()} cores, "
          f"{args.threads} threads\n")
    print("| network | input | fp32 ms | int8 ms | int8 speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for folder in sorted(path.parent for path in STARTER.glob("*/model.onnx")):
        shape = [1, *json.loads((folder / "export.json").read_text())["input_shape"][1:]]
        model = core.read_model(str(folder / "model.onnx"))
        model.reshape({model.inputs[0].get_any_name(): shape})
        rng = np.random.default_rng(0)
        inputs = [rng.random(shape, dtype=np.float32) for _ in range(8)]
        fp32 = latency(core, model, inputs, args.seconds, args.threads)
        quantised = nncf.quantize(model, nncf.Dataset([{0: array} for array in inputs]), subset_size=len(inputs))
        int8 = latency(core, quantised, inputs, args.seconds, args.threads)
        print(f"| {folder.name} | {'x'.join(map(str, shape[1:]))} | {1000 * fp32:.1f} | {1000 * int8:.1f} | "
              f"{fp32 / int8:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
