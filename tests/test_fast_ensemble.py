"""The fast ensemble: which members it keeps, fast.yaml, and ``funduskit predict --ensemble fast``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml
from predict_helpers import make_run
from skimage.data import retina

from funduskit.core.errors import DataError, FunduskitError
from funduskit.inference.fast_ensemble import FAST_FILE, fast_subset, select_ensemble
from funduskit.inference.model_store import find_runs, load_models
from funduskit.inference.pipeline import PredictEngine, PredictOptions


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report-shaped ensemble of tiny networks: 3 whole-photograph and 2 crop disc networks, 2 cup,
    1 vessel, 2 fovea, and 4 classifiers alternating the two preprocessings."""
    root = tmp_path_factory.mktemp("ensemble")
    make_run(root, "vessel", "vessel-fold0", 0)
    for fold in range(3):
        make_run(root, "disc", f"disc-whole-fold{fold}", 10 + fold, disc_bias=2.0)
    for fold in range(2):
        make_run(root, "disc", f"disc-crop-fold{fold}", 20 + fold, **{"data.view": "disc"})
        make_run(root, "cup", f"cup-fold{fold}", 30 + fold)
        make_run(root, "fovea", f"fovea-fold{fold}", 40 + fold)
    for fold in range(2):
        for preprocessing in ("normalize", "zero_local_mean"):
            make_run(root, "glaucoma", f"glaucoma-{preprocessing}-fold{fold}", 50 + fold,
                     **{"data.preprocessing": preprocessing})
    return root


def names(runs: dict) -> dict[str, list[str]]:
    return {task: [run.name for run in items] for task, items in runs.items()}


def test_the_fast_ensemble_keeps_the_first_member_of_each_task_and_stage(ensemble_dir: Path) -> None:
    runs = find_runs(ensemble_dir)
    fast = names(fast_subset(runs))
    assert fast == {"vessel": ["vessel-fold0"], "disc": ["disc-crop-fold0", "disc-whole-fold0"],
                    "cup": ["cup-fold0"], "fovea": ["fovea-fold0"], "glaucoma": ["glaucoma-normalize-fold0"]}
    # two members a task: the classifiers are one of each preprocessing, not two of one
    two = names(fast_subset(runs, {task: 2 for task in runs}))
    assert two["glaucoma"] == ["glaucoma-normalize-fold0", "glaucoma-zero_local_mean-fold0"]
    assert two["disc"] == ["disc-crop-fold0", "disc-crop-fold1", "disc-whole-fold0", "disc-whole-fold1"]
    assert names(select_ensemble(runs, "full")) == names(runs)
    with pytest.raises(ValueError, match="unknown ensemble"):
        select_ensemble(runs, "fastest")


def test_fast_yaml_names_the_fast_members_of_the_tasks_it_lists(ensemble_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "models.yaml").write_text(yaml.safe_dump(
        {task: [str(run.run_dir) for run in items] for task, items in find_runs(ensemble_dir).items()}))
    (folder / FAST_FILE).write_text(yaml.safe_dump({"cup": [str(ensemble_dir / "cup-fold1")],
                                                    "glaucoma": [str(ensemble_dir / "glaucoma-normalize-fold1"),
                                                                 str(ensemble_dir / "glaucoma-zero_local_mean-fold1")]}))
    fast = names(load_models(folder, starter_dir=None, ensemble="fast").runs)
    assert fast["cup"] == ["cup-fold1"]
    assert fast["glaucoma"] == ["glaucoma-normalize-fold1", "glaucoma-zero_local_mean-fold1"]
    assert fast["fovea"] == ["fovea-fold0"]  # not listed: the rule
    assert len(load_models(folder, starter_dir=None).runs["glaucoma"]) == 4  # full by default
    (folder / FAST_FILE).write_text(yaml.safe_dump({"cup": [str(ensemble_dir / "fovea-fold0")]}))
    with pytest.raises(DataError, match="whose config.yaml is for task 'fovea'") as error:
        load_models(folder, starter_dir=None, ensemble="fast")
    assert FAST_FILE in str(error.value)  # the file to fix is named


def test_an_unknown_ensemble_is_refused_with_the_choices() -> None:
    with pytest.raises(FunduskitError, match="ensemble must be one of full, fast"):
        PredictEngine(None, PredictOptions(ensemble="quick"))


def test_predict_ensemble_fast_runs_fewer_members_and_says_so(ensemble_dir: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photos" / "retina.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), cv2.cvtColor(cv2.resize(retina(), (320, 320)), cv2.COLOR_RGB2BGR))
    outputs = {}
    for ensemble in ("full", "fast"):
        out = tmp_path / ensemble
        completed = subprocess.run(
            [sys.executable, "-m", "funduskit", "predict", str(photo.parent), "--models", str(ensemble_dir),
             "--no-starter", "--out", str(out), "--ensemble", ensemble, "--quality", "off", "--quiet"],
            capture_output=True, text=True, check=False)
        assert completed.returncode == 0, completed.stderr
        record = json.loads((out / "predict.json").read_text())
        outputs[ensemble] = record
        assert record["options"]["ensemble"] == ensemble
        assert (out / "segmentation" / "retina.png").is_file()
    assert {task: len(runs) for task, runs in outputs["full"]["runs"].items()} == \
        {"vessel": 1, "disc": 5, "cup": 2, "fovea": 2, "glaucoma": 4}
    assert {task: len(runs) for task, runs in outputs["fast"]["runs"].items()} == \
        {"vessel": 1, "disc": 2, "cup": 1, "fovea": 1, "glaucoma": 1}
    assert outputs["full"]["settings_key"] != outputs["fast"]["settings_key"]  # a restart never mixes them


BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "fast_ensemble.py"


def test_the_agreement_benchmark_skips_with_the_reason_without_the_real_data(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, str(BENCHMARK), "--data", str(tmp_path / "absent"),
                                "--runs", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "skipped" in completed.stdout and str(tmp_path / "absent") in completed.stdout


def test_the_agreement_benchmark_scores_as_refuge_does_and_only_on_unseen_photographs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.syspath_prepend(str(BENCHMARK.parent))  # it imports its neighbours (backends, machine)
    spec = importlib.util.spec_from_file_location("fast_ensemble_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]

    def row(name: str, disc: float, vcdr: float, probabilities: tuple[float, float]) -> dict[str, object]:
        return {"name": name, "disc": disc, "cup": 1.0, "vcdr": vcdr, "fovea_px": 4.0, "fovea_fraction": 0.002,
                "probabilities": probabilities}

    rows = [row("drive-01.png", 0.98, 0.01, (0.1, 0.2)), row("chase-Image_01L.jpg", 0.96, 0.03, (0.2, 0.3)),
            row("retina.jpg", 1.0, 0.0, (0.3, 0.35)),
            row("drishti-x.jpg", 0.10, 0.9, (0.9, 0.8)),  # disc/cup members trained on it: glaucoma only
            row("rimone-y.png", 0.99, 0.02, (0.0, 1.0))]  # classifiers trained on it: disc, cup, vCDR only
    found = module.scores(rows)
    assert found["disc"] == pytest.approx(((0.98 + 0.96 + 1.0 + 0.99) / 4, 0.96, 4))
    assert found["vcdr"] == pytest.approx(((0.01 + 0.03 + 0.0 + 0.02) / 4, 0.03, 4))
    assert found["glaucoma"] == pytest.approx((1.0, 0.1, 4))  # ranks kept among drive, chase, retina, drishti
    assert module.met("disc", found["disc"][0]) and module.met("vcdr", found["vcdr"][0])
    assert not module.met("glaucoma", 0.97) and not module.met("fovea", 0.011)
