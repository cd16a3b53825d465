"""``funduskit demo`` end to end on a tiny plan: every stage writes what the next one reads, and a
demo killed in the middle of a training stage, started again, ends with the uninterrupted models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from demo_helpers import GLAUCOMA_EPOCHS, LONG_LAST_STAGE, TINY_MODELS, TINY_PLAN
from rich.console import Console

from funduskit.runs.checkpoint import load_checkpoint
from funduskit.tools.demo import BARS, DEMO_FILE, DONE_FILE, run_demo


def test_tiny_demo_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # a training set interrupted while it was generated: photographs, no manifest yet
    (out / "data" / "train" / "Images").mkdir(parents=True)
    (out / "data" / "train" / "Images" / "S0001.jpg").write_bytes(b"half a photograph")
    console = Console(record=True, width=120)
    result = run_demo(out, TINY_PLAN, console=console, progress=False)
    assert "is incomplete; generating it again" in " ".join(console.export_text(clear=False).split())

    summary = json.loads((out / DEMO_FILE).read_text())
    assert set(summary["bars"]) == {bar.metric for bar in BARS}
    assert summary["metrics"]["mean_disc_dice"] is not None
    assert 0.0 <= summary["metrics"]["fovea_error_fraction"] < 2.0
    assert result.report.is_file()
    assert len(list((out / "predictions" / "segmentation").glob("*.png"))) == TINY_PLAN.test_images
    assert (out / "predictions" / "summary.json").is_file()
    for model in TINY_MODELS:
        assert (out / "models" / model.name / "best.pt").is_file(), model.name
    assert "glaucoma-zero-local-mean-fold0" in {model.name for model in TINY_MODELS}
    # the classifier started from the cup segmenter's checkpoint (its photo encoder)
    glaucoma_config = (out / "models" / "glaucoma-zero-local-mean-fold0" / "config.yaml").read_text()
    assert str(out / "models" / "cup-fold0" / "best.pt") in glaucoma_config
    assert "Glaucoma AUROC" in console.export_text()

    # A second run with the same arguments keeps the trained models and the data.
    checkpoint = out / "models" / "disc-fold0" / "best.pt"
    before = checkpoint.stat().st_mtime_ns
    second = Console(record=True, width=120)
    run_demo(out, TINY_PLAN, console=second, progress=False)
    assert checkpoint.stat().st_mtime_ns == before
    assert "already trained; kept" in second.export_text()


def test_full_plan_trains_each_model_after_the_models_it_reads() -> None:
    from funduskit.tools.demo import FULL_PLAN

    names = [model.name for model in FULL_PLAN.models]
    assert names[0] == "vessel-fold0"
    for index, model in enumerate(FULL_PLAN.models):
        if model.init_from is not None:
            assert model.init_from in names[:index], model.name
    assert sum(model.task == "glaucoma" for model in FULL_PLAN.models) == 2


def _demo_process(out: Path) -> subprocess.Popen:
    """The tiny demo (its classifier trained for several epochs) in a child process."""
    helpers = Path(__file__).parent / "demo_helpers.py"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(helpers.parent), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, str(helpers), str(out)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def test_a_demo_killed_inside_a_training_stage_resumes_it_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    _finish(_demo_process(whole))

    killed = tmp_path / "killed"
    classifier = killed / "models" / LONG_LAST_STAGE.models[-1].name
    process = _demo_process(killed)
    deadline = time.monotonic() + 300
    while not (classifier / "last.pt").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # the first epoch is saved: the stage is under way
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    interrupted_at = load_checkpoint(classifier / "last.pt")["epoch"]
    assert interrupted_at < GLAUCOMA_EPOCHS - 1 and not (classifier / DONE_FILE).exists()

    output = " ".join(_finish(_demo_process(killed)).split())  # the console wraps long lines
    assert "was interrupted; resuming it" in output and "already trained; kept" in output
    assert load_checkpoint(classifier / "last.pt")["epoch"] == GLAUCOMA_EPOCHS - 1
    for model in LONG_LAST_STAGE.models:
        for name in ("best.pt", "last.pt"):
            expected = load_checkpoint(whole / "models" / model.name / name)["models"]
            got = load_checkpoint(killed / "models" / model.name / name)["models"]
            for role, weights in expected.items():
                for key, value in weights.items():
                    torch.testing.assert_close(got[role][key], value, rtol=1e-5, atol=1e-6,
                                               msg=f"{model.name}/{name} {role}.{key}")
    metrics = [json.loads((folder / DEMO_FILE).read_text())["metrics"] for folder in (whole, killed)]
    assert metrics[0] == metrics[1]
