"""The starter models: packing a run (float16 weights, portable configuration), the models folder
that falls back on them task by task, and the set shipped in the package on a real photograph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from funduskit.cli import main
from funduskit.core.errors import FunduskitError
from funduskit.inference.model_store import MANIFEST, STARTER, STARTER_DIR, installed_starter_dir, load_models
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.runs.networks import load_trained_model
from funduskit.tools.starter_models import (
    STARTER_MODELS,
    StarterModel,
    pack_run,
    packed_size_mb,
    write_manifest,
)
from tests.test_predict import make_run

#: The issue's limit for the whole shipped set.
STARTER_LIMIT_MB = 40.0


@pytest.fixture(scope="module")
def packed_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A starter set packed from tiny runs of every task (as `funduskit starter-models` packs)."""
    runs = tmp_path_factory.mktemp("work")
    out = tmp_path_factory.mktemp("starter") / "set"
    models = []
    for seed, task in enumerate(("vessel", "disc", "cup", "fovea", "glaucoma")):
        run = make_run(runs / task, task, "fold0", seed, **({"disc_bias": 4.0} if task == "disc" else {}),
                       **{"data.vessel_model": str(runs / "vessel" / "fold0")} if task != "vessel" else {})
        (run / "scores.json").write_text(json.dumps({"dice": 0.9, "minutes": 1.0}))
        pack_run(run, out / f"{task}-tiny")
        models.append(StarterModel(f"{task}-tiny", task, ("drive",)))
    write_manifest(out, models)
    return out


def test_packing_keeps_the_network_in_float16_and_drops_the_builders_paths(tmp_path: Path) -> None:
    run = make_run(tmp_path / "runs", "disc", "fold0", 3, **{"data.vessel_model": "/home/me/runs/vessel/fold0"})
    packed = pack_run(run, tmp_path / "packed")
    state = load_checkpoint(packed / "best.pt")
    assert set(state) >= {"models", "config", "task"} and "optimizers" not in state
    floats = [t for t in state["models"]["model"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert "/home/me" not in (packed / "config.yaml").read_text()
    assert (packed / "best.pt").stat().st_size < 0.6 * (run / "best.pt").stat().st_size
    original, _ = load_trained_model(run)
    restored, _ = load_trained_model(packed)
    assert all(p.dtype == torch.float32 for p in restored.parameters())  # computes in float32
    x = torch.randn(2, 4, 64, 64)
    with torch.inference_mode():
        difference = (original.predict(x) - restored.predict(x)).abs().max().item()
    assert 0 < difference < 5e-3  # rounded weights, the same network


def test_a_models_folder_takes_the_starter_models_for_the_tasks_it_lacks(packed_set: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    make_run(mine, "disc", "my-disc", 11, disc_bias=4.0)
    models = load_models(mine, starter_dir=packed_set)
    assert models.origin["disc"] == str(mine)
    assert {task: origin for task, origin in models.origin.items() if task != "disc"} == {
        task: STARTER for task in ("vessel", "cup", "fovea", "glaucoma")}
    assert [run.name for run in models.runs["disc"]] == ["my-disc"]
    assert [run.name for run in load_models(None, starter_dir=packed_set).runs["disc"]] == ["disc-tiny"]
    assert set(load_models(mine, starter_dir=None).runs) == {"disc"}
    with pytest.raises(FunduskitError, match="no starter models"):
        load_models(None, starter_dir=tmp_path / "not-installed")


def test_predict_without_models_answers_with_the_starter_set_and_says_so(packed_set: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from skimage import data as skimage_data

    from funduskit.inference import pipeline

    photo = tmp_path / "photos" / "retina.png"
    photo.parent.mkdir()
    import cv2

    cv2.imwrite(str(photo), cv2.cvtColor(cv2.resize(skimage_data.retina(), (256, 256)), cv2.COLOR_RGB2BGR))
    monkeypatch.setattr(pipeline, "STARTER_DIR", packed_set)
    out = tmp_path / "out"
    assert main(["predict", str(photo.parent), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    record = json.loads((out / "predict.json").read_text())
    assert record["models_dir"] is None
    assert set(record["origin"].values()) == {STARTER}
    assert (out / "vessels" / "retina.png").is_file()
    assert "research-use starter models" in (out / "report.html").read_text()


def test_the_models_command_lists_a_set_with_its_held_out_figures(packed_set: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--models", str(packed_set), "--no-starter", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {entry["task"] for entry in entries} == {"vessel", "disc", "cup", "fovea", "glaucoma"}
    assert all(entry["scores"] == "dice 0.9000" for entry in entries)


# --------------------------------------------------------------------------------------------
# The set shipped in the package
# --------------------------------------------------------------------------------------------


def test_the_shipped_set_is_complete_and_small_enough_for_the_wheel() -> None:
    assert installed_starter_dir() == STARTER_DIR, "the starter models are missing: run `make starter-models`"
    manifest = yaml.safe_load((STARTER_DIR / MANIFEST).read_text())
    assert sorted(row for rows in manifest.values() for row in rows) == sorted(m.row for m in STARTER_MODELS)
    assert packed_size_mb() <= STARTER_LIMIT_MB
    for model in STARTER_MODELS:
        state = load_checkpoint(STARTER_DIR / model.row / "best.pt")
        assert all(t.dtype == torch.float16 for t in state["models"]["model"].values() if t.is_floating_point())


def test_the_shipped_set_finds_papilla_and_macula_on_a_real_photograph(tmp_path: Path) -> None:
    """skimage.data.retina() (CC0, 1411 x 1411): the papilla is the bright disc on the left, its
    centre at about (205, 640) and about 170 px across (read off the photograph); the fovea is the
    darkest point of the macula, (707, 704) (the minimum of the green channel blurred with a 40 px
    Gaussian). Tolerances: the disc centre within half a disc diameter; the fovea within one disc
    diameter, the usual bound of a fovea "found" (and the fovea network learnt from synthetic
    photographs only)."""
    import cv2
    from skimage import data as skimage_data

    photo = tmp_path / "photos" / "retina.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.cvtColor(skimage_data.retina(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "funduskit", "predict", str(photo.parent), "--out", str(out), "--quiet",
               "--device", "cpu"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 0, completed.stderr
    assert "from starter" in completed.stdout
    result = json.loads((out / "results.json").read_text())[0]
    disc_x, disc_y = result["disc_x"], result["disc_y"]
    assert np.hypot(disc_x - 205, disc_y - 640) < 85, (disc_x, disc_y)
    assert np.hypot(result["fovea_x"] - 707, result["fovea_y"] - 704) < 170, (result["fovea_x"], result["fovea_y"])
    vessels = cv2.imread(str(out / "vessels" / "retina.png"), cv2.IMREAD_GRAYSCALE)
    assert vessels.shape == (1411, 1411)
    assert 0.03 < (vessels >= 128).mean() < 0.25  # a vessel tree, not nothing nor everything
