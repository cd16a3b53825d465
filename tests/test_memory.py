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


def test_predicting_with_exported_networks_does_not_import_torch(tmp_path):
    """The real command on a real photograph with the starter models (exported) and the quality
    gate's content measure (shipped export): torch (0.5 GB resident) and timm are never loaded."""
    from skimage import data

    import cv2

    cv2.imwrite(str(tmp_path / "retina.png"), data.retina()[..., 2::-1])
    printed, loaded = _run_fresh(
        "from funduskit.cli import main\n"
        f"code = main(['predict', {str(tmp_path / 'retina.png')!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "print(code)"
    )
    assert printed[-1] in ("0", "None")
    record = json.loads((tmp_path / "out" / "results" / "retina.png.json").read_text())
    assert record["quality"] == "good" and record["quality_measures"]["fundus_likeness"] > 0.1, record
    assert "onnxruntime" in loaded
    assert not loaded & {"torch", "timm", "torchvision"}, sorted(loaded & {"torch", "timm", "torchvision"})


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
    assert default_batch_size("cuda:1") == 4 and default_batch_size("cpu") == 1
