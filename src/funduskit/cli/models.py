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
            "List every trained model that `funduskit predict [--models DIR]` would use: name, where it comes "
            "from (DIR or the starter set installed with funduskit), task, preset, network, input size, view "
            "(whole photographs or disc crops), training data, size on disk, best validation metric, the "
            "held-out figures of the real-data benchmark, and the terms of the data it was trained on."
        ),
    )
    parser.add_argument("--models", type=Path, default=None, metavar="DIR",
                        help="folder of training run directories, or holding a models.yaml manifest (default: "
                             "the starter models installed with funduskit, which also fill the tasks DIR lacks)")
    parser.add_argument("--no-starter", dest="starter", action="store_false",
                        help="list only the models of --models")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON instead of a table")
    return parser


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from funduskit.inference.model_catalogue import describe_runs
    from funduskit.inference.model_store import STARTER_DIR, load_models

    models = load_models(args.models, starter_dir=STARTER_DIR if args.starter else None)
    entries = describe_runs(models.runs, models.origin)
    console = Console()
    if args.json:
        console.print_json(json.dumps([asdict(entry) for entry in entries]))
        return 0
    where = args.models if args.models is not None else "the starter set"
    table = Table(title=f"{len(entries)} trained model(s): {where}")
    for column in ("model", "from", "task", "preset", "network", "input", "view", "trained on", "MB",
                   "best validation", "held-out figures", "data terms"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(entry.name, entry.origin, entry.task, entry.preset, entry.network, str(entry.input_size),
                      entry.view, entry.training_data, f"{entry.size_mb:.1f}", entry.metric, entry.scores, entry.terms)
    console.print(table)
    return 0
