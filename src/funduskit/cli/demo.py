"""``funduskit demo``: the whole system on synthetic data, from photos to the evaluated report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="synthesise data, train every model (cpu preset), predict a held-out set, evaluate, report",
        description=(
            "Generate a synthetic REFUGE2 data set, train the vessel, disc, cup, fovea and glaucoma "
            "models with the cpu preset (small ensembles), tune thresholds and the glaucoma combiner on a "
            "synthetic calibration set, predict a held-out synthetic set, evaluate it with the official REFUGE "
            "metrics and write the HTML report. About 20 minutes on two AVX2 cores (19.7 measured); --quick "
            "gives a smaller version for a first look. Started again with the same --out after any "
            "interruption, it keeps what is done and resumes an unfinished model."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("demo-output"), metavar="DIR",
                        help="the demo folder (default: demo-output)")
    parser.add_argument("--quick", action="store_true", help="a smaller demo (about 3 minutes)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    from funduskit.tools.demo import FULL_PLAN, QUICK_PLAN, run_demo

    result = run_demo(args.out, QUICK_PLAN if args.quick else FULL_PLAN, progress=not args.quiet)
    return 0 if result.all_bars_met or args.quick else 1
