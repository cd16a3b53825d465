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
        changes = {"data.vessel_model": str(runs / "vessel" / "fold0")} if task != "vessel" else {}
        if task == "glaucoma":  # 128 px: a 4 x 4 feature map for the 4 x 4 pooling (ONNX exports no upsampling)
            changes["data.input_size"] = 128
        run = make_run(runs / task, task, "fold0", seed, **({"disc_bias": 4.0} if task == "disc" else {}), **changes)
        (run / "scores.json").write_text(json.dumps({"dice": 0.9, "minutes": 1.0}))
        pack_run(run, out / f"{task}-tiny")
        models.append(StarterModel(f"{task}-tiny", task, ("drive",)))
    write_manifest(out, models)
    return out


def test_packing_keeps_the_network_as_onnx_with_float16_weights_and_no_builders_paths(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto

    from funduskit.inference.onnx_backend import OnnxNetwork

    run = make_run(tmp_path / "runs", "disc", "fold0", 3, **{"data.vessel_model": "/home/me/runs/vessel/fold0"})
    (run / "metrics.csv").write_text("epoch,val_dice\n1,0.5\n")
    packed = pack_run(run, tmp_path / "packed")
    assert sorted(p.name for p in packed.iterdir()) == ["config.yaml", "export.json", "metrics.csv", "model.onnx"]
    graph = onnx.load(str(packed / "model.onnx")).graph
    big = [t for t in graph.initializer if np.prod(t.dims) >= 64]
    assert big and all(t.data_type == TensorProto.FLOAT16 for t in big)
    assert "/home/me" not in (packed / "config.yaml").read_text()
    assert json.loads((packed / "export.json").read_text())["float16_storage"] is True
    original, _ = load_trained_model(run)
    x = torch.randn(2, 4, 64, 64)
    with torch.inference_mode():
        difference = (torch.sigmoid(original(x)) - torch.sigmoid(torch.from_numpy(OnnxNetwork(packed / "model.onnx")(x)))).abs().max()
    assert 0 < float(difference) < 1e-2  # rounded weights, the same network, float32 arithmetic


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
    assert "ONNX Runtime" in record["runtime"]
    assert (out / "vessels" / "retina.png").is_file()
    assert "research-use starter models" in (out / "report.html").read_text()
    # a user's own disc network (a torch checkpoint) beside the starter models (ONNX): both backends
    mine = tmp_path / "mine"
    make_run(mine, "disc", "my-disc", 11, disc_bias=4.0)
    assert main(["predict", str(photo.parent), "--models", str(mine), "--out", str(tmp_path / "mixed"), "--quiet",
                 "--device", "cpu"]) == 0
    record = json.loads((tmp_path / "mixed" / "predict.json").read_text())
    assert record["origin"]["disc"] == str(mine) and record["origin"]["cup"] == STARTER
    assert "ONNX Runtime fp32" in record["runtime"] and "+ torch (" in record["runtime"]


def test_rebuilding_reuses_finished_runs_and_packs_them_with_a_manifest(tmp_path: Path) -> None:
    """``build_starter_models`` on a work folder whose runs are finished (as the real-data benchmark
    leaves them): nothing is trained, every run is packed, the manifest names them by task."""
    from funduskit.core.config import load_config
    from funduskit.tools.starter_models import build_starter_models

    data = tmp_path / "shared"
    (data / "drive" / "training").mkdir(parents=True)
    work = tmp_path / "work"
    models = [StarterModel("vessel-tiny", "vessel", ("drive",)), StarterModel("disc-tiny", "disc", ("drive",))]
    for seed, model in enumerate(models):
        run = make_run(work / model.row, model.task, "fold0", seed)
        epochs = load_config(run / "config.yaml").epochs
        (run / "metrics.csv").write_text("epoch,val_dice\n" + "".join(f"{e},0.5\n" for e in range(1, epochs + 1)))
    said: list[str] = []
    manifest = build_starter_models(data, work, tmp_path / "out", models=models, log=said.append)
    assert yaml.safe_load(manifest.read_text()) == {"vessel": ["vessel-tiny"], "disc": ["disc-tiny"]}
    assert all("trained already" in line for line in said) and len(said) == 2
    assert {task for task in load_models(tmp_path / "out", starter_dir=None).runs} == {"vessel", "disc"}
    assert packed_size_mb(tmp_path / "out") > 0
    with pytest.raises(Exception, match="rim-one-dl"):
        build_starter_models(data, work, tmp_path / "again", models=[StarterModel("x", "disc", ("rimone",))])


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
    assert all((STARTER_DIR / model.row / "model.onnx").is_file() for model in STARTER_MODELS)
    listed = subprocess.run([sys.executable, "-m", "funduskit", "models", "--json"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert sorted(entry["name"] for entry in entries) == sorted(model.row for model in STARTER_MODELS)
    assert all(entry["origin"] == STARTER and entry["terms"] for entry in entries)
    assert all((STARTER_DIR / model.row / "scores.json").is_file() for model in STARTER_MODELS
               if model.row != "fovea-synthetic")  # every real-data network carries its held-out figures


def test_the_wheel_holds_the_starter_models_within_the_limit(tmp_path: Path) -> None:
    """``python -m build --wheel`` (no isolation: offline) packs every starter network."""
    import zipfile

    import shutil

    root = Path(__file__).resolve().parents[1]
    project = tmp_path / "project"  # a copy, so that the build's own folders stay out of the checkout
    shutil.copytree(root / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copy(root / name, project / name)
    completed = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                                str(tmp_path / "dist"), str(project)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("funduskit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = {info.filename: info.file_size for info in archive.infolist()}
    packed = {name: size for name, size in members.items() if name.startswith("funduskit/starter_models/")}
    assert "funduskit/starter_models/models.yaml" in packed
    assert all(f"funduskit/starter_models/{model.row}/model.onnx" in packed for model in STARTER_MODELS)
    assert sum(packed.values()) / 2**20 <= STARTER_LIMIT_MB


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
