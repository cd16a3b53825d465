"""``funduskit bench``: inference speed, memory and agreement table (see :mod:`funduskit.tools.bench`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from funduskit.tools.bench import add_arguments

    parser = subparsers.add_parser(
        "bench",
        help="inference speed table: baseline vs optimised torch vs ONNX Runtime",
        description=(
            "Time every network and the whole prediction pipeline (single model and the report's full "
            "ensemble) at the paper preset's sizes on this machine: eager fp32 baseline, the optimised "
            "predictor, and ONNX Runtime, in the same run; FLOPs and the fraction of the measured matmul "
            "peak; peak memory; agreement with the baseline. Prints tables, writes JSON with --out."
        ),
    )
    return add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from funduskit.tools.bench import run_from_args

    return run_from_args(args, "funduskit bench")
