"""A tiny demo plan (seconds per model) shared by the demo tests; run as a script it runs the demo
into the folder given, as ``funduskit demo --out`` does with the real plan."""

from __future__ import annotations

import sys
from dataclasses import replace

from funduskit.tools.demo import DemoPlan, ModelPlan

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
TINY_PLAN = DemoPlan(train_images=12, test_images=6, scale=0.15, glaucoma_fraction=0.34, folds=3,
                     models=TINY_MODELS, test_glaucoma_fraction=0.34, calibration_images=12)

#: The classifier trains for several epochs, so that a test can stop the demo inside that stage.
GLAUCOMA_EPOCHS = 6
LONG_LAST_STAGE = replace(TINY_PLAN, models=TINY_MODELS[:-1] + (
    replace(TINY_MODELS[-1], overrides={**TINY_MODELS[-1].overrides, "epochs": GLAUCOMA_EPOCHS}),))


if __name__ == "__main__":
    from rich.console import Console

    from funduskit.tools.demo import run_demo

    run_demo(sys.argv[1], LONG_LAST_STAGE, console=Console(width=120), progress=False)
