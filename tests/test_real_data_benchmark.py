"""``benchmarks/real_data.py`` without the shared real data, and its table and fold bookkeeping
on fabricated scores (no training: the benchmark's training is what it measures, hours on 2 cores)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "real_data.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("real_data_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_it_skips_with_the_reason_when_the_real_data_are_absent(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "absent"), "--out",
                                str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "skipped" in completed.stdout and str(tmp_path / "absent") in completed.stdout
    assert not (tmp_path / "runs").exists()


def test_rows_name_known_tasks_data_and_dependencies(benchmark) -> None:
    names = {row.name for row in benchmark.ROWS}
    assert len(names) == len(benchmark.ROWS)
    for row in benchmark.ROWS:
        assert set(row.data) <= set(benchmark.DATA_SETS), row.name
        assert row.metrics, row.name
        assert all(name in names and name != row.name for name in row.uses), row.name
        assert row.trains == (not row.uses), row.name


def test_the_table_gives_mean_sd_and_the_target_verdict(benchmark, tmp_path: Path) -> None:
    row = next(r for r in benchmark.ROWS if r.name == "disc-rimone")
    for fold, dice in ((0, 0.96), (1, 0.94)):
        run = benchmark.fold_dir(tmp_path, row, fold)
        run.mkdir(parents=True)
        (run / benchmark.SCORES_FILE).write_text(json.dumps({"dice": dice, "minutes": 8.0}))
    table = benchmark.table([row], [0, 1, 2], tmp_path / "data", tmp_path)
    line = next(line for line in table.splitlines() if line.startswith("| disc-rimone"))
    assert "| 0,1 |" in line and "0.9500 ± 0.0141" in line and ">= 0.95: met" in line and "| 8.0 |" in line
    missing = benchmark.table([benchmark.ROWS[0]], [0], tmp_path / "data", tmp_path)
    assert "not run" in missing


def test_a_run_still_training_is_not_scored(benchmark, tmp_path: Path) -> None:
    from funduskit.core.config import preset, save_config

    run = tmp_path / "run"
    save_config(preset("disc", "real"), run / "config.yaml")  # 30 epochs
    (run / "best.pt").write_bytes(b"")
    (run / "metrics.csv").write_text("epoch,val_dice\n" + "".join(f"{e},0.9\n" for e in range(1, 6)))
    assert not benchmark.run_finished(run)
    (run / "metrics.csv").write_text("epoch,val_dice\n" + "".join(f"{e},0.9\n" for e in range(1, 31)))
    assert benchmark.run_finished(run)
