"""``funduskit bench``: inference speed, memory and agreement table (see :mod:`funduskit.tools.bench`).

Also the parser of ``benchmarks/inference.py`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from funduskit.core.config import PRECISIONS
from funduskit.tools.bench.options import MODES, BenchOptions


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="inference speed table: baseline vs optimised torch vs ONNX Runtime vs OpenVINO, and the targets",
        description=(
            "Time every network and the whole prediction pipeline (single model and the report's full "
            "ensemble) at the paper preset's sizes on this machine: eager fp32 baseline, the optimised "
            "predictor, ONNX Runtime and OpenVINO, in the same run; FLOPs and the fraction of the measured matmul "
            "peak; peak memory; agreement with the baseline. Prints tables, writes JSON with --out."
        ),
    )
    return add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_from_args(args, "funduskit bench")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``funduskit bench`` and ``benchmarks/inference.py``."""
    parser.add_argument("--out", type=Path, default=None, metavar="JSON", help="write the result document here")
    parser.add_argument("--quick", action="store_true",
                        help="a short version: 2 repeats, batch 2, 2 and 4 photos, ensembles of 2/1/1/2")
    parser.add_argument("--preset", choices=("paper", "cpu", "tiny"), default="paper",
                        help="networks and sizes: the paper preset (default), the cpu preset, or tiny test networks")
    parser.add_argument("--size-scale", type=float, default=1.0, metavar="F", help="scale the input sizes")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N", help="timed repeats (default 3)")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="batch size of the batched rows (default 4)")
    parser.add_argument("--photos", type=str, default=None, metavar="A,B",
                        help="photographs streamed for the memory check (default 10,200)")
    parser.add_argument("--ensemble", type=str, default=None, metavar="G,D,C,F",
                        help="ensemble sizes: glaucoma, disc, cup, fovea (default 8,4,2,10)")
    parser.add_argument("--modes", type=str, default=",".join(MODES), metavar="M,...",
                        help=f"which of {', '.join(MODES)} (default all)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="of the optimised torch mode (default auto: bf16 autocast where the CPU computes it "
                             "natively, as funduskit predict does)")
    parser.add_argument("--no-isolate", action="store_true",
                        help="run every configuration in this process (memory figures then are cumulative)")
    return parser


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    quick = bool(args.quick)
    ensemble_text = args.ensemble or ("2,1,1,2" if quick else "8,4,2,10")
    try:
        glaucoma, disc, cup, fovea = (int(v) for v in ensemble_text.split(","))
        photos = tuple(int(v) for v in (args.photos or ("2,4" if quick else "10,200")).split(","))
    except ValueError as error:
        from funduskit.core.errors import FunduskitError

        raise FunduskitError(f"--ensemble takes four counts G,D,C,F and --photos two counts A,B ({error})") from error
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or "baseline" not in modes or len(photos) != 2 or min(photos) < 1:
        from funduskit.core.errors import FunduskitError

        raise FunduskitError(f"--modes must include baseline and come from {', '.join(MODES)}; --photos takes "
                             f"two positive counts (got modes {modes}, photos {photos})")
    return BenchOptions(
        preset=args.preset, size_scale=args.size_scale, threads=args.threads,
        repeats=args.repeats or (2 if quick else 3), warmup=1, batch=args.batch or (2 if quick else 4),
        photos=photos, ensemble={"vessel": 1, "glaucoma": glaucoma, "disc": disc, "cup": cup, "fovea": fovea},
        modes=modes, isolate=not args.no_isolate, quick=quick, matmul_size=1024 if quick else 2048,
        precision=args.precision,
    )


def main(argv: Sequence[str] | None = None, *, program: str = "funduskit bench") -> int:
    """Run the benchmark from the command line; prints the tables, writes ``--out``."""
    import funduskit.tools.bench

    description = (funduskit.tools.bench.__doc__ or "").split("\n\n")[0]  # the benchmark's first paragraph
    args = add_arguments(argparse.ArgumentParser(prog=program, description=description)).parse_args(argv)
    return run_from_args(args, program)


def reproduce_command(args: argparse.Namespace, program: str) -> str:
    """The command line that repeats a run: ``program`` and every option not at its default."""
    defaults = vars(add_arguments(argparse.ArgumentParser()).parse_args([]))
    parts = [program]
    for name, value in vars(args).items():
        if name not in defaults or value == defaults[name] or name.startswith("_"):
            continue
        flag = "--" + name.replace("_", "-")
        parts.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(parts[:1]).strip("'") + (" " + shlex.join(parts[1:]) if parts[1:] else "")


def run_from_args(args: argparse.Namespace, program: str = "funduskit bench") -> int:
    """Run with parsed options: print the tables, write ``--out``; returns the exit status."""
    from rich.console import Console

    from funduskit.tools.bench.runner import run_benchmark
    from funduskit.tools.bench.tables import render

    console = Console(width=None if sys.stdout.isatty() else 200)
    command = reproduce_command(args, program)
    options = options_from_args(args)
    result = run_benchmark(options, command, log=lambda text: console.print(f"[dim]{text}", soft_wrap=True))
    for table in render(result):
        console.print(table)
    console.print(f"Reproduce with: {command}", soft_wrap=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"Wrote {args.out}")
    return 0
