"""Training benchmark: does the cpu preset learn each task on synthetic data, and how fast?

Generates a synthetic training set and a held-out synthetic set (different seeds), trains one
fold of every task with the ``cpu`` preset (vessel first: its generator gives the vessel-map input
of the disc, cup and fovea networks, as in the report), scores each best checkpoint on the
held-out set, and prints a table: preset, epochs, seconds per epoch, total time, validation and
held-out metric, and the target of the issue. It also times one training step of each cpu network
in NCHW fp32, channels_last fp32 and (where the CPU has native bf16) channels_last + bf16 autocast.

Usage::

    python benchmarks/training.py                       # everything, about 30-40 minutes on 2 idle cores
    python benchmarks/training.py --tasks disc,cup --train DIR --test DIR --out runs/bench

The machine's load average is printed before and after: on a shared machine every time here is
inflated by the other processes (the CPU time is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from funduskit.core.tasks import TASKS as TASK_ORDER  # noqa: E402 (after the environment is set)

TARGETS = {  # the "learns" thresholds on held-out synthetic images
    "vessel": ("val_dice", ">=", 0.70),
    "disc": ("val_dice", ">=", 0.90),
    "cup": ("val_dice", ">=", 0.75),
    "fovea": ("val_error_pct", "<=", 3.0),
    "glaucoma": ("val_auroc", ">=", 0.85),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASK_ORDER), help="comma-separated tasks (default: all)")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "paper"))
    parser.add_argument("--train", type=Path, default=None, help="training data set (default: generate)")
    parser.add_argument("--test", type=Path, default=None, help="held-out data set (default: generate)")
    parser.add_argument("--n", type=int, default=400,
                        help="generated training images (default 400: 300 train / 100 validation in fold 0)")
    parser.add_argument("--n-test", type=int, default=100, help="generated held-out images (default 100)")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="generated image scale (default 0.5: 1062 x 1028 and 817 x 817; every network "
                             "input here is 384 px or less)")
    parser.add_argument("--glaucoma-fraction", type=float, default=0.3,
                        help="fraction of glaucoma in the generated sets (0.3: enough positives per fold)")
    parser.add_argument("--vessel-input", default="model", choices=("model", "ground_truth"),
                        help="disc/cup/fovea vessel input: the trained vessel generator (default) or reference masks")
    parser.add_argument("--set", action="append", default=[], metavar="TASK:KEY=VALUE",
                        help="configuration change for one task, e.g. cup:epochs=20 (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--skip-step-timing", action="store_true")
    parser.add_argument("--steps-only", action="store_true", help="only time one training step per network")
    return parser.parse_args(argv)


def generate(folder: Path, n: int, seed: int, scale: float, fraction: float) -> tuple[Path, float]:
    from funduskit.synthetic import generate_dataset

    started = time.perf_counter()
    generate_dataset(folder, n=n, seed=seed, scale=scale, glaucoma_fraction=fraction)
    return folder, time.perf_counter() - started


def step_timings(task: str, preset_name: str, repeats: int = 5) -> dict[str, float]:
    """Seconds per training step of the preset's network in each execution mode.

    The modes take turns (one step each, ``repeats`` rounds after a warm-up round) so that load
    from other processes on a shared machine falls on all of them alike; the median is reported.
    """
    import copy

    import torch

    from funduskit.core.config import preset
    from funduskit.runs.networks import build_model
    from funduskit.runtime.device import cpu_has_native_bf16
    from funduskit.training.losses import build_loss

    config = preset(task, preset_name)
    size, batch = config.data.input_size, config.batch_size
    model = build_model(config)
    channels = getattr(model, "in_channels", 3)
    inputs = torch.randn(batch, channels, size, size)
    if task == "fovea":
        target = torch.zeros(batch, 3, size // 8, size // 8)
        target[:, 0, 3, 3] = 1
    elif task == "glaucoma":
        target = torch.tensor([0.0, 1.0] * (batch // 2) + [0.0] * (batch % 2))
    else:
        target = (torch.rand(batch, 1, size, size) > 0.9).float()
    loss_fn = build_loss(config.loss.name, **config.loss.kwargs)
    modes = {"nchw_fp32": (False, False), "channels_last_fp32": (True, False)}
    if cpu_has_native_bf16():
        modes["channels_last_bf16"] = (True, True)
    setups = {}
    for mode, (channels_last, bf16) in modes.items():
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = copy.deepcopy(model).to(memory_format=layout)
        setups[mode] = (net, inputs.contiguous(memory_format=layout), bf16,
                        torch.optim.Adam(net.parameters(), lr=1e-4))
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(repeats + 1):
        for mode, (net, x, bf16, optimizer) in setups.items():
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(x)
            loss = loss_fn(logits, target)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times[mode].append(time.perf_counter() - started)
    return {mode: sorted(values[1:])[len(values[1:]) // 2] for mode, values in times.items()}


def train_and_score(task: str, args: argparse.Namespace, train_dir: Path, test_dir: Path, runs: Path,
                    vessel_run: Path | None) -> dict[str, object]:
    from funduskit.core.config import override, parse_assignment, preset
    from funduskit.data.datasets import read_dataset
    from funduskit.training import evaluate_checkpoint, fit

    changes: dict[str, object] = {}
    for text in args.set:
        prefix, _, assignment = text.partition(":")
        if prefix == task:
            key, value = parse_assignment(assignment)
            changes[key] = value
    uses_vessels = task in ("disc", "cup", "fovea")
    if uses_vessels and args.vessel_input == "model":
        if vessel_run is None:
            raise SystemExit(f"{task}: --vessel-input model needs the vessel task in --tasks (trained first)")
        changes["data.vessel_model"] = str(vessel_run)
    config = override(preset(task, args.preset), changes)
    run_dir = runs / task
    shutil.rmtree(run_dir, ignore_errors=True)
    cpu_started, started = time.process_time(), time.perf_counter()
    result = fit(config, read_dataset(train_dir), run_dir, show_progress=sys.stderr.isatty())
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    heldout = evaluate_checkpoint(run_dir, read_dataset(test_dir), threads=2, original_size=True)
    epoch_seconds = [record["train_seconds"] + record["val_seconds"] for record in result.history]
    metric, comparison, threshold = TARGETS[task]
    value = heldout[metric]
    passed = value >= threshold if comparison == ">=" else value <= threshold
    return {
        "task": task, "preset": args.preset, "epochs": config.epochs, "input_size": config.data.input_size,
        "batch_size": config.batch_size, "seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds),
        "total_seconds": wall, "process_cpu_seconds": cpu, "best_epoch": result.best_epoch,
        "metric": metric, "validation": result.best_metric, "heldout": value,
        "heldout_all": heldout, "target": f"{comparison} {threshold}", "passed": passed, "run_dir": str(run_dir),
    }


def print_table(rows: list[dict[str, object]], timings: dict[str, dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="funduskit training benchmark (one fold, synthetic data)")
    for column in ("task", "preset", "size", "batch", "epochs", "s/epoch", "total s", "metric",
                   "validation", "held-out", "target", "ok"):
        table.add_column(column, justify="right" if column not in ("task", "preset", "metric") else "left")
    for row in rows:
        extra = row["heldout_all"].get("dice_original_size")  # type: ignore[union-attr]
        held = f"{row['heldout']:.3f}" + (f" ({extra:.3f} at full size)" if extra is not None else "")
        table.add_row(str(row["task"]), str(row["preset"]), str(row["input_size"]), str(row["batch_size"]),
                      str(row["epochs"]), f"{row['seconds_per_epoch']:.1f}", f"{row['total_seconds']:.0f}",
                      str(row["metric"]), f"{row['validation']:.3f}", held, str(row["target"]),
                      "yes" if row["passed"] else "NO")
    console = Console(width=160)
    if rows:
        console.print(table)
    if timings:
        steps = Table(title="one training step of the preset's network (seconds, median of 5, modes in turns)")
        modes = sorted({mode for value in timings.values() for mode in value})
        steps.add_column("task")
        for mode in modes:
            steps.add_column(mode, justify="right")
        for task, value in timings.items():
            steps.add_row(task, *(f"{value[mode]:.3f}" if mode in value else "-" for mode in modes))
        console.print(steps)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    tasks = [task for task in TASK_ORDER if task in args.tasks.split(",")]
    runs = args.out or Path(tempfile.mkdtemp(prefix="funduskit-bench-"))
    runs.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; load average before: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.steps_only:
        print_table([], {task: step_timings(task, args.preset) for task in tasks})
        return 0
    train_dir, test_dir = args.train, args.test
    if train_dir is None:
        train_dir, seconds = generate(runs / "data-train", args.n, 11, args.scale, args.glaucoma_fraction)
        print(f"generated {args.n} training images in {seconds:.0f} s")
    if test_dir is None:
        test_dir, seconds = generate(runs / "data-test", args.n_test, 12, args.scale, args.glaucoma_fraction)
        print(f"generated {args.n_test} held-out images in {seconds:.0f} s")

    timings = {} if args.skip_step_timing else {task: step_timings(task, args.preset) for task in tasks}
    rows = []
    vessel_run: Path | None = None
    for task in tasks:
        row = train_and_score(task, args, train_dir, test_dir, runs, vessel_run)
        if task == "vessel":
            vessel_run = Path(str(row["run_dir"]))
        rows.append(row)
        print(json.dumps({key: value for key, value in row.items() if key != "heldout_all"}), flush=True)
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_table(rows, timings)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "step_seconds": timings}, indent=2))
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
