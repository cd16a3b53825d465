"""Beyond one process: ``predict --engine ray`` gives the local engine's outputs, and
``train --nproc 2`` (DistributedDataParallel, gloo) gives one process's training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from predict_helpers import make_models
from training_helpers import TINY_ENCODER

from funduskit.core.errors import FunduskitError
from funduskit.runs.checkpoint import load_checkpoint
from funduskit.training.data import EpochBatchSampler


def funduskit(*words: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """The real command line in a subprocess (offline, one thread per process)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # a session of its own: what Ray or torchrun signal on the way out stays inside it, never
    # reaching the test process (a pytest-xdist worker once died during these tests)
    done = subprocess.run([sys.executable, "-m", "funduskit", *map(str, words)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600, start_new_session=True)
    assert done.returncode == 0, f"funduskit {' '.join(map(str, words))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic photos (about 210 x 205 px) in the REFUGE2 layout, half glaucoma."""
    from funduskit.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("scale") / "synthetic"
    generate_dataset(out, n=12, seed=5, scale=0.1, glaucoma_fraction=0.5)
    return out


# ------------------------------------------------------------------------------------------
# Ray
# ------------------------------------------------------------------------------------------

def test_ray_engine_gives_the_local_engines_outputs_and_skips_on_a_second_run(tiny_set: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray engine's tests need Ray (installed by the dev extra)")
    photos = tmp_path / "photos"
    shutil.copytree(tiny_set / "Images", photos)
    first = sorted(photos.iterdir())[0]
    (photos / "notes.txt").write_text("not a photograph")
    (photos / "truncated.jpg").write_bytes(first.read_bytes()[:300])
    models = make_models(tmp_path / "models")

    funduskit("predict", photos, "--models", models, "--out", "local", "--quiet", cwd=tmp_path)
    ray_run = funduskit("predict", photos, "--models", models, "--out", "ray", "--engine", "ray", "--workers", "2",
                        "--quiet", cwd=tmp_path)
    assert "13 photographs: 13 predicted, 0 skipped" in ray_run.stdout and "1 could not be read" in ray_run.stdout
    assert "Ray, 2 worker(s)" in ray_run.stdout
    local, ray = tmp_path / "local", tmp_path / "ray"

    for table in ("results.csv", "results.json", "classification_results.csv"):
        assert (ray / table).read_text() == (local / table).read_text(), table
    records = sorted(path.name for path in (local / "results").iterdir())
    assert records == sorted(path.name for path in (ray / "results").iterdir()) and len(records) == 13
    for name in records:  # the records, field for field (the settings key included)
        assert json.loads((ray / "results" / name).read_text()) == json.loads((local / "results" / name).read_text())
    assert json.loads((ray / "results" / "truncated.jpg.json").read_text())["status"] == "error"
    masks = sorted((local / "segmentation").iterdir())
    assert len(masks) == 12
    for mask in masks:
        assert (ray / "segmentation" / mask.name).read_bytes() == mask.read_bytes(), mask.name
    run = json.loads((ray / "predict.json").read_text())
    assert [item["path"] for item in run["passed_over"]] == [str(photos / "notes.txt")]
    assert (ray / "report.html").is_file()

    again = funduskit("predict", photos, "--models", models, "--out", "ray", "--engine", "ray", "--workers", "2",
                      "--quiet", cwd=tmp_path)
    assert "13 photographs: 0 predicted, 13 skipped" in again.stdout
    # and the local engine skips what the Ray engine recorded
    local_again = funduskit("predict", photos, "--models", models, "--out", "ray", "--quiet", cwd=tmp_path)
    assert "0 predicted, 13 skipped" in local_again.stdout


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from funduskit.inference.cohort import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(FunduskitError, match=r"pip install 'funduskit\[ray\]'"):
        import_ray()


# ------------------------------------------------------------------------------------------
# Multi-process training
# ------------------------------------------------------------------------------------------

def test_processes_share_every_global_batch_in_the_one_process_order() -> None:
    one = EpochBatchSampler(11, 4, seed=3, min_last=2)
    shares = [EpochBatchSampler(11, 4, seed=3, min_last=2, rank=rank, world_size=2) for rank in range(2)]
    for epoch in (0, 5):
        for sampler in (one, *shares):
            sampler.set_epoch(epoch)
        batches = list(one)
        together = [sorted(a + b) for a, b in zip(*map(list, shares))]
        assert together == [sorted(batch) for batch in batches]
        assert len(shares[0]) == len(shares[1]) == len(one) == 3  # 4 + 4 + 3
    # a last batch of one image (batch norm) is dropped; one of 3 among 4 processes too (one would get none)
    assert len(EpochBatchSampler(9, 4, seed=0, min_last=2)) == 2
    assert len(EpochBatchSampler(11, 4, seed=0, min_last=2, world_size=4)) == 2
    with pytest.raises(FunduskitError, match="cannot be shared by 4 processes"):
        EpochBatchSampler(11, 2, seed=0, world_size=4)


TINY_TRAINING = ("--epochs", "2", "--batch-size", "4", "--threads", "1", "--workers", "0", "--folds", "3",
                 "--input-size", "64", "--set", "data.augmentation=light")
TINY_TWO_BRANCH = ("--set", f"model.kwargs.photo_encoder={TINY_ENCODER}", "--set",
                   f"model.kwargs.vessel_encoder={TINY_ENCODER}", "--set", "model.kwargs.decoder_channels=[8,8,8]")


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["models"]["model"]


def test_two_processes_train_what_one_process_trains(tiny_set: Path, tmp_path: Path) -> None:
    """Classifier head on a frozen backbone (no batch norm in training): the same network to
    float rounding; the order, global batch, gradient average and gathered validation are exact."""
    tiny = (*TINY_TRAINING, "--set", f"model.kwargs.backbone={TINY_ENCODER}")
    funduskit("train", "glaucoma", "--data", tiny_set, *tiny, "--epochs", "1", "--out", "base", "--quiet", cwd=tmp_path)
    head = (*tiny, "--epochs", "3", "--backbone", "base")
    funduskit("train", "glaucoma", "--data", tiny_set, *head, "--out", "one", "--quiet", cwd=tmp_path)
    two = funduskit("train", "glaucoma", "--data", tiny_set, *head, "--out", "two", "--nproc", "2", cwd=tmp_path)
    assert "2 processes (gloo)" in two.stderr
    assert two.stdout.count("Best val_auroc") == 1  # rank 0 alone speaks
    one_state, two_state = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    for key, value in one_state["models"]["model"].items():
        torch.testing.assert_close(two_state["models"]["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for one_epoch, two_epoch in zip(one_state["history"], two_state["history"]):
        for key in ("train_loss", "val_loss", "val_auroc"):
            assert two_epoch[key] == pytest.approx(one_epoch[key], rel=1e-5, abs=1e-6), key
    assert len(two_state["rng_per_process"]) == 2
    assert (tmp_path / "two" / "split.csv").read_text() == (tmp_path / "one" / "split.csv").read_text()


def test_two_processes_with_batch_norm_stay_close_and_resume_exactly(tiny_set: Path, tmp_path: Path) -> None:
    """Disc network (batch norm: on CPU each process normalises its own share of the batch, so the
    steps differ a little from one process's): losses within 1 %; a resumed two-process run equals
    an uninterrupted one exactly."""
    tiny = (*TINY_TRAINING, *TINY_TWO_BRANCH)
    funduskit("train", "disc", "--data", tiny_set, *tiny, "--out", "one", "--quiet", cwd=tmp_path)
    funduskit("train", "disc", "--data", tiny_set, *tiny, "--out", "two", "--nproc", "2", "--quiet", cwd=tmp_path)
    one, two = load_checkpoint(tmp_path / "one")["history"], load_checkpoint(tmp_path / "two")["history"]
    for one_epoch, two_epoch in zip(one, two, strict=True):
        assert two_epoch["train_loss"] == pytest.approx(one_epoch["train_loss"], rel=0.01)

    funduskit("train", "disc", "--data", tiny_set, *tiny, "--epochs", "1", "--out", "parts", "--nproc", "2", "--quiet",
              cwd=tmp_path)
    funduskit("train", "disc", "--data", tiny_set, "--epochs", "2", "--resume", "parts", "--nproc", "2", "--quiet",
              cwd=tmp_path)
    whole, parts = load_checkpoint(tmp_path / "two"), load_checkpoint(tmp_path / "parts")
    assert parts["epoch"] == whole["epoch"] == 1
    for key, value in whole["models"]["model"].items():
        torch.testing.assert_close(parts["models"]["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert [r["val_dice"] for r in parts["history"]] == pytest.approx([r["val_dice"] for r in whole["history"]])
