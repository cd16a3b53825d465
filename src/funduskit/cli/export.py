"""``funduskit export``: trained models to ONNX, for ``funduskit predict --backend onnx``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export trained models to ONNX (for predict --backend onnx)",
        description=(
            "Export every run in --models (run directories or a models.yaml manifest) to ONNX in --out, "
            "as a models folder that `funduskit predict --backend onnx --models OUT` takes: "
            "OUT/models.yaml, and per run config.yaml, model.onnx and export.json. Each export is checked "
            "against torch with ONNX Runtime."
        ),
    )
    parser.add_argument("--models", type=Path, required=True, metavar="DIR", help="the trained models")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (default 17)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs torch check")
    parser.add_argument("--float16-storage", action="store_true",
                        help="store the weights in float16 (half the size; ONNX Runtime still computes in float32)")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from funduskit.core.errors import FunduskitError
    from funduskit.tools.export import export_runs

    if args.opset < 17:
        raise FunduskitError(f"--opset must be 17 or later, got {args.opset}")
    console = Console()
    summary = export_runs(args.models, args.out, opset=args.opset, check=not args.no_check,
                          float16_storage=args.float16_storage,
                          on_run=lambda run: console.print(f"exporting {run.task}: {run.run_dir}", soft_wrap=True))
    table = Table(title=f"ONNX export -> {summary.out_dir}")
    for column in ("task", "run", "input", "max |p_onnx - p_torch|"):
        table.add_column(column)
    for item in summary.runs:
        difference = "-" if item.max_probability_difference is None else f"{item.max_probability_difference:.1e}"
        table.add_row(item.task, item.run_dir, "x".join(map(str, item.input_shape)), difference)
    console.print(table)
    console.print(f"Predict with: funduskit predict IMAGES --models {summary.out_dir} --backend onnx --out OUT",
                  soft_wrap=True)
    return 0
