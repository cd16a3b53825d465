"""``funduskit demo`` end to end on a tiny plan: every stage writes what the next one reads."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from funduskit.demo import BARS, DEMO_FILE, DemoPlan, ModelPlan, run_demo

TINY_ENCODER = "test_efficientnet"
TWO_BRANCH = {"model.kwargs.photo_encoder": TINY_ENCODER, "model.kwargs.vessel_encoder": TINY_ENCODER,
              "data.input_size": 64, "runtime.num_workers": 0, "runtime.threads": 1, "epochs": 1}
TINY_MODELS = (
    ModelPlan("vessel", 0, {"data.input_size": 64, "epochs": 1, "batch_size": 2, "runtime.num_workers": 0,
                            "model.kwargs.base_width": 4, "model.kwargs.depth": 2,
                            "discriminator.kwargs.base_width": 4}),
    ModelPlan("disc", 0, TWO_BRANCH | {"model.kwargs.decoder_channels": [8, 8, 8]}),
    ModelPlan("cup", 0, TWO_BRANCH | {"model.kwargs.decoder_channels": [8, 8, 8]}),
    ModelPlan("fovea", 0, TWO_BRANCH | {"model.kwargs.decoder_channels": [8, 8]}),
    ModelPlan("glaucoma", 0, {"model.kwargs.backbone": TINY_ENCODER, "data.input_size": 64, "epochs": 1,
                              "data.preprocessing": "zero_local_mean", "runtime.num_workers": 0},
              init_from="cup-fold0"),
)
TINY_PLAN = DemoPlan(train_images=12, test_images=6, scale=0.15, glaucoma_fraction=0.25, folds=3,
                     models=TINY_MODELS, test_glaucoma_fraction=0.34)


def test_tiny_demo_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    console = Console(record=True, width=120)
    result = run_demo(out, TINY_PLAN, console=console, progress=False)

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
    from funduskit.demo import FULL_PLAN

    names = [model.name for model in FULL_PLAN.models]
    assert names[0] == "vessel-fold0"
    for index, model in enumerate(FULL_PLAN.models):
        if model.init_from is not None:
            assert model.init_from in names[:index], model.name
    assert sum(model.task == "glaucoma" for model in FULL_PLAN.models) == 2
