"""Inference speed, memory and agreement of funduskit's networks and pipelines on this machine.

Usage (from the repository root)::

    python benchmarks/inference.py [--out bench.json] [--quick] [--preset paper|cpu|tiny]
                                   [--size-scale F] [--threads N] [--modes baseline,torch,onnx]

the same as ``funduskit bench``. Prints the tables (per network, the single-model pipeline, the
report's full ensemble, memory over many photographs, the targets) and writes them as JSON with
the command that reproduces them. See ``docs/performance.md`` and :mod:`funduskit.tools.bench`.
"""

from __future__ import annotations

import sys

from funduskit.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(program="python benchmarks/inference.py"))
