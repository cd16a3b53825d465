"""What keeps prediction's memory down: lazy imports, the allocator setting, the batch default."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import torch

from funduskit.inference.pipeline import default_batch_size
from funduskit.runtime.memory import return_freed_buffers_to_system

#: Imported by training only; prediction with ONNX Runtime must not pay for them (about 200 MB).
TRAINING_ONLY = ("timm", "torchvision", "albumentations", "funduskit.training.loop", "funduskit.data.datasets")


def _run_fresh(code: str) -> tuple[list[str], set[str]]:
    """The stdout lines of a fresh interpreter running ``code``, and the modules it loaded."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = completed.stdout.splitlines()
    return lines[:-1], set(json.loads(lines[-1]))


def test_onnx_prediction_does_not_import_the_training_stack():
    _, loaded = _run_fresh(
        "from funduskit.cli import predict\n"
        "from funduskit.inference.pipeline import predict_photos\n"
        "from funduskit.inference.onnx_backend import load_onnx_network\n"
        "from funduskit.models.fovea import decode_fovea\n"
        "from funduskit.runtime.device import resolve_runtime"
    )
    assert "funduskit.inference.predictor" in loaded
    assert not loaded & set(TRAINING_ONLY), sorted(loaded & set(TRAINING_ONLY))


def test_lazy_model_package_still_registers_every_model():
    printed, loaded = _run_fresh(
        "from funduskit.models import list_models, create_model\n"
        "print(json.dumps(list_models()))\n"
        "create_model('glaucoma_classifier', backbone='mobilenetv3_small_050', pool_size=1)"
    )
    assert set(json.loads(printed[0])) == {"disc_cup_segmenter", "fovea_localiser", "vessel_generator",
                                           "vessel_discriminator", "glaucoma_classifier"}
    assert "timm" in loaded  # a model was built: now the zoo is loaded


def test_allocator_setting_applies_on_glibc_only():
    assert return_freed_buffers_to_system() is (platform.libc_ver()[0] == "glibc")


def test_default_batch_is_one_photo_on_cpu_and_four_on_gpu():
    assert default_batch_size(torch.device("cpu")) == 1
    assert default_batch_size(torch.device("cuda")) == 4
