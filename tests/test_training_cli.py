"""``funduskit train``: trains in a subprocess, resumes, and explains what it refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from training_helpers import RUN_FILES, TINY_ENCODER, tiny_data  # noqa: F401 (fixture)

from funduskit.cli import main
from funduskit.core.config import load_config
from funduskit.runs.checkpoint import load_checkpoint


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "funduskit", "train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_trains_in_a_subprocess(tiny_data: Path, tmp_path: Path) -> None:
    tiny = ["--input-size", "64", "--folds", "3", "--workers", "0", "--threads", "1",
            "--set", f"model.kwargs.backbone={TINY_ENCODER}"]
    first = _cli("glaucoma", "--data", str(tiny_data), "--epochs", "1", *tiny, "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Best val_auroc" in first.stdout
    assert all((tmp_path / "run" / name).is_file() for name in RUN_FILES)
    config = load_config(tmp_path / "run" / "config.yaml")
    assert (config.data.input_size, config.data.n_folds, config.model.kwargs["backbone"]) == (64, 3, TINY_ENCODER)
    assert config.preset == "cpu" and config.epochs == 1

    # The same entry point in-process (no second interpreter start-up): resume with more epochs.
    assert main(["train", "glaucoma", "--data", str(tiny_data), "--resume", str(tmp_path / "run"),
                 "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1


def test_cli_explains_missing_labels_and_refuses_to_overwrite(tiny_data: Path, tmp_path: Path, capsys) -> None:
    no_vessels = tmp_path / "no-vessels"
    shutil.copytree(tiny_data, no_vessels, ignore=shutil.ignore_patterns("Vessel_Masks"))
    assert main(["train", "vessel", "--data", str(no_vessels), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "no vessel masks" in error and str(no_vessels) in error
    assert main(["train", "glaucoma", "--data", str(tiny_data), "--resume", str(tmp_path), "--quiet"]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert main(["train", "glaucoma", "--data", str(tiny_data), "--set", "epochs", "--quiet"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    # the library says "resume"; the command adds its own option's name
    run = ["train", "glaucoma", "--data", str(tiny_data), "--out", str(tmp_path / "once"), "--epochs", "1",
           "--input-size", "64", "--set", f"model.kwargs.backbone={TINY_ENCODER}", "--workers", "0", "--quiet"]
    assert main(run) == 0
    capsys.readouterr()
    assert main(run) == 2
    assert "already holds a training run; resume (--resume)" in capsys.readouterr().err
