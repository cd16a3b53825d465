"""``funduskit models``: list the trained models of a models folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="list the trained models of a models folder",
        description=(
            "List every trained model that `funduskit predict --models DIR` would use: name, task, preset, "
            "network, input size, view (whole photographs or disc crops), training data, size on disk, best "
            "validation metric, and the terms of the data it was trained on."
        ),
    )
    parser.add_argument("--models", type=Path, required=True, metavar="DIR",
                        help="folder of training run directories, or holding a models.yaml manifest")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON instead of a table")
    return parser


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from funduskit.inference.model_catalogue import describe_runs
    from funduskit.inference.model_store import find_runs

    entries = describe_runs(find_runs(args.models))
    console = Console()
    if args.json:
        console.print_json(json.dumps([asdict(entry) for entry in entries]))
        return 0
    table = Table(title=f"{len(entries)} trained model(s) in {args.models}")
    for column in ("model", "task", "preset", "network", "input", "view", "trained on", "MB", "best validation",
                   "data terms"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(entry.name, entry.task, entry.preset, entry.network, str(entry.input_size), entry.view,
                      entry.training_data, f"{entry.size_mb:.1f}", entry.metric, entry.terms)
    console.print(table)
    return 0
