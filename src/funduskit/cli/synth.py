"""``funduskit synth OUT``: write a synthetic data set in the REFUGE2 split-folder layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic REFUGE2-layout data set (photos, masks, labels, fovea)",
        description=(
            "Generate synthetic fundus photographs of two cameras (2124x2056 Zeiss-like and 1634x1634 "
            "Canon-like, left and right eyes) with disc/cup masks (0/128/255), vessel masks, glaucoma "
            "labels carried by the optic-nerve-head anatomy, and fovea positions, in the layout of one "
            "REFUGE2 split folder: Images/, Disc_Masks/, Vessel_Masks/, glaucoma.csv, fovea.csv, "
            "synth.json. The same seed gives the same data set."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT",
                        help="output folder (new, empty, or an earlier synth output, which is replaced)")
    parser.add_argument("--n", type=int, default=40, metavar="N", help="number of images (default 40)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed, >= 0 (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="F",
                        help="image size relative to the cameras' full frames, e.g. 0.25 for quick runs (default 1.0)")
    parser.add_argument("--glaucoma-fraction", type=float, default=0.1, metavar="P",
                        help="fraction of glaucoma cases, rounded to whole images (default 0.1, as in REFUGE)")
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from funduskit.synthetic import generate_dataset

    cases = generate_dataset(args.out, n=args.n, seed=args.seed, scale=args.scale,
                             glaucoma_fraction=args.glaucoma_fraction, progress=True)
    positives = sum(case.label for case in cases)
    cameras = {name: sum(case.camera == name for case in cases) for name in sorted({c.camera for c in cases})}
    Console().print(
        f"Wrote {len(cases)} images to {args.out} ({positives} glaucoma; "
        + ", ".join(f"{count} {name}" for name, count in cameras.items())
        + f"; seed {args.seed}, scale {args.scale})"
    )
    return 0
