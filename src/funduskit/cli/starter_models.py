"""``funduskit starter-models``: rebuild the starter models that ship with the package."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "starter-models",
        help="train and pack the starter models (those predict uses without --models)",
        description=(
            "Train every starter model with the real preset on fold 0 of a 5-fold split of its data (vessels on "
            "DRIVE + CHASE_DB1, the whole-photograph disc on Drishti-GS1, crop disc and cup on Drishti-GS1 + "
            "RIM-ONE DL, glaucoma on RIM-ONE DL, fovea on funduskit's synthetic set), then pack them (float16 "
            "weights, configuration, split, curves) into --out with a models.yaml manifest. Finished runs in "
            "--work are reused, interrupted ones resumed (the real-data benchmark's runs/real-data works). "
            "See docs/starter-models.md."
        ),
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="folder laid out as ../shared/data: drive/training, chase_db1, drishti-gs1/training, "
                             "rim-one-dl")
    parser.add_argument("--work", type=Path, default=Path("runs/real-data"), metavar="DIR",
                        help="training run directories (default runs/real-data)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where the packed set goes (default: the installed package's starter_models folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from funduskit.inference.model_store import STARTER_DIR
    from funduskit.tools.starter_models import build_starter_models, packed_size_mb

    console = Console(quiet=args.quiet)
    out = args.out if args.out is not None else STARTER_DIR
    manifest = build_starter_models(args.data, args.work, out, show_progress=not args.quiet,
                                    log=lambda text: console.print(text, soft_wrap=True, markup=False))
    console.print(f"Starter models: {manifest} ({packed_size_mb(out):.1f} MB); list them with `funduskit models"
                  f"{'' if out.resolve() == STARTER_DIR.resolve() else f' --models {out} --no-starter'}`", soft_wrap=True, markup=False)
    return 0
