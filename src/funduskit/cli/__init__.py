"""The ``funduskit`` command line.

Each subcommand lives in its own module ``funduskit.cli.<name>`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``; those modules only parse and call one typed
function of the package, and import heavy libraries (torch) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from funduskit import __version__
from funduskit.core.errors import FunduskitError

# Order is the order of `funduskit --help`.
COMMANDS: tuple[str, ...] = ("synth", "train", "evaluate", "predict", "tune", "models", "starter-models", "demo", "bench",
                             "export", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funduskit",
        description="Glaucoma assessment from colour fundus photographs (REFUGE2, VUNO method).",
    )
    parser.add_argument("--version", action="version", version=f"funduskit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"funduskit.cli.{name.replace('-', '_')}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``funduskit`` command; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv  # the words given, for a command that starts itself again (train --nproc)
    try:
        return int(args._run(args) or 0)
    except FunduskitError as error:
        print(f"funduskit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"funduskit {args.command}: interrupted", file=sys.stderr)
        return 130
