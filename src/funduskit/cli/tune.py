"""``funduskit tune``: choose the disc and cup thresholds on validation predictions."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tune",
        help="choose the disc/cup post-processing thresholds on validation predictions",
        description=(
            "Read the probability maps that `funduskit predict --save-probabilities` wrote for validation "
            "photographs, choose the disc threshold with the best mean Dice and the cup threshold with the "
            "best mean cup Dice minus vCDR error, and write thresholds.json where `funduskit predict` reads "
            "it: the --models folder of those predictions, or --out. When the ground truth has glaucoma "
            "labels, also fit the glaucoma combiner (a logistic model on the classifiers' probability and "
            "the measured vCDR) that `funduskit predict` then uses."
        ),
    )
    parser.add_argument("--pred", type=Path, required=True, metavar="DIR", help="a `funduskit predict` output folder")
    parser.add_argument("--gt", type=Path, required=True, metavar="DIR", help="the ground-truth data set (any layout)")
    parser.add_argument("--out", type=Path, default=None, metavar="PATH",
                        help="thresholds.json path or folder (default: the models folder the predictions used)")
    parser.add_argument("--format", default=None, metavar="F", help="ground-truth layout (detected when omitted)")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from funduskit.inference.tuning import tune

    result, path = tune(args.pred, args.gt, out=args.out, gt_format=args.format)
    table = Table(title=f"Thresholds chosen on {result.images} validation photographs")
    for column in ("", "disc threshold", "cup threshold", "disc Dice", "cup Dice", "vCDR error"):
        table.add_column(column)
    default = result.default_scores
    table.add_row("default", "0.50", "0.50", f"{default['disc_dice']:.4f}", f"{default['cup_dice']:.4f}",
                  f"{default['vcdr_error']:.4f}")
    table.add_row("tuned", f"{result.thresholds.disc:.2f}", f"{result.thresholds.cup:.2f}", f"{result.disc_dice:.4f}",
                  f"{result.cup_dice:.4f}", f"{result.vcdr_error:.4f}")
    console = Console()
    console.print(table)
    if result.thresholds.glaucoma is not None:
        scores = ", ".join(f"{name} {value:.3f}" for name, value in result.glaucoma_auroc.items())
        console.print(f"Glaucoma combiner fitted on {result.thresholds.glaucoma.images} labelled photographs "
                      f"(AUROC on them: {scores})")
    elif result.glaucoma_note:
        console.print(result.glaucoma_note)
    console.print(f"Wrote {path}", soft_wrap=True)
    return 0
