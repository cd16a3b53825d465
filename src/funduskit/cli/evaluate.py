"""``funduskit evaluate``: score a submission folder against ground truth, the REFUGE way."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a REFUGE2-format submission against ground truth",
        description=(
            "Score a submission (classification_results.csv, segmentation/NAME.png, "
            "fovea_location_results.csv; any subset) against a ground-truth data set with the official "
            "REFUGE metrics: disc and cup Dice, vCDR error, AUROC, sensitivity at 0.85 specificity, "
            "fovea distance. Writes summary.json and per_image.csv."
        ),
    )
    parser.add_argument("--pred", type=Path, required=True, metavar="DIR", help="the submission folder")
    parser.add_argument("--gt", type=Path, required=True, metavar="DIR", help="the ground-truth data set (any layout)")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="JSON",
        help="summary file; per_image.csv is written beside it (default: PRED/summary.json)",
    )
    parser.add_argument("--format", default=None, metavar="F", help="ground-truth layout (detected when omitted)")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from funduskit.scoring.evaluate import (
        SUMMARY_FILE,
        evaluate,
        save_evaluation,
        summary_table,
    )

    result = evaluate(args.pred, args.gt, gt_format=args.format)
    summary_path, per_image_path = save_evaluation(result, args.out or args.pred / SUMMARY_FILE)
    console = Console()
    console.print(summary_table(result))
    console.print(f"Wrote {summary_path} and {per_image_path}")
    return 0
