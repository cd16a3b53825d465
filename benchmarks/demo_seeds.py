"""Does ``funduskit demo`` meet its bars by design or by luck? The demo's plan on several seeds.

Runs the full demo plan (``make demo``: 160 training photos, the nine models, the calibration set
and its tuning, 80 held-out photos) once per synthetic-data seed, each into its own folder, and
prints one table: every metric per seed against its bar, the time of each run, and the machine's
CPU flags (the precision paths differ between CPU kinds). Each seed's training, held-out and
calibration sets come from seeds S, S + 1 and S + 2, so the default seeds 0, 10 and 20 share no photo.

A run stopped at any moment continues where it was when started again with the same ``--out``:
each seed's demo resumes itself (a finished seed's demo keeps everything and only evaluates
again); each stage's time is the one measured by the run that did its work.

Usage::

    python benchmarks/demo_seeds.py --out runs/demo-seeds            # about 50 minutes on 2 idle cores
    python benchmarks/demo_seeds.py --out runs/demo-seeds --seeds 0,10 --json seeds.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_flags() -> str:
    """The CPU's precision-relevant flags (``avx512_bf16``, ``avx512_vnni``, ``amx``), or AVX2-only."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    found = sorted(set(re.findall(r"\b(avx512_bf16|avx512_vnni|amx\w*)\b", text)))
    model = re.search(r"model name\s*:\s*(.+)", text)
    name = model.group(1).strip() if model else "unknown CPU"
    return f"{name}: {' '.join(found) if found else 'none of avx512_bf16/avx512_vnni/amx (AVX2-only)'}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="one demo folder per seed goes here")
    parser.add_argument("--seeds", default="0,10,20", help="comma-separated data seeds (default 0,10,20)")
    parser.add_argument("--quick", action="store_true", help="the --quick demo plan (a first look, no bars)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from funduskit.tools.demo import BARS, DEMO_FILE, FULL_PLAN, QUICK_PLAN, run_demo

    args = parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    console = Console(stderr=True)
    rows = []
    for seed in seeds:
        folder = args.out / f"seed-{seed}"
        console.rule(f"[bold]seed {seed}: {folder}")
        started = time.perf_counter()
        run_demo(folder, replace(plan, seed=seed), console=console, progress=sys.stderr.isatty())
        record = json.loads((folder / DEMO_FILE).read_text())
        rows.append({"seed": seed, "metrics": record["metrics"], "bars": record["bars"],
                     "demo_minutes": round(record["total_seconds"] / 60, 1),
                     "this_call_minutes": round((time.perf_counter() - started) / 60, 1)})

    table = Table(title=f"funduskit demo plan on {len(seeds)} data seeds ({cpu_flags()})")
    table.add_column("seed", justify="right")
    for bar in BARS:
        table.add_column(f"{bar.label} ({'>=' if bar.higher_is_better else '<='} {bar.value:g})", justify="right")
    table.add_column("all met")
    table.add_column("demo min", justify="right")
    for row in rows:
        cells = []
        for bar in BARS:
            value = row["metrics"].get(bar.metric)
            cells.append(("n/a" if value is None else f"{value:.3f}") + ("" if row["bars"][bar.metric]["met"] else " (missed)"))
        met = all(row["bars"][bar.metric]["met"] for bar in BARS)
        table.add_row(str(row["seed"]), *cells, "yes" if met else "NO", f"{row['demo_minutes']:.1f}")
    Console().print(table)
    command = "python benchmarks/demo_seeds.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"Reproduce with: {command}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_flags(), "command": command, "plan": "quick" if args.quick
                                         else "full", "rows": rows}, indent=1) + "\n")
    return 0 if all(all(row["bars"][bar.metric]["met"] for bar in BARS) for row in rows) or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
