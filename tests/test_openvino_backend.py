"""``funduskit predict --backend openvino``: the trained starter networks on a real photograph and a
disc crop of it give ONNX Runtime's answers in fp32 (issue 16's limits) and stay close in bf16.

Every OpenVINO run is the real command in a subprocess: a process that has loaded OpenVINO crashed
(SIGSEGV) when it later forked DataLoader workers, which other tests of the same pytest worker do
(docs/decisions.md, "OpenVINO")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from funduskit.core.errors import FunduskitError
from funduskit.inference.openvino_backend import load_openvino_network
from funduskit.runtime.device import Runtime, cpu_has_native_bf16
from funduskit.scoring.metrics import dice
from funduskit.tools.bench import BenchOptions, task_config

pytest.importorskip("openvino")


def predict(photos: Path, out: Path, *options: str) -> dict[str, dict]:
    """``funduskit predict`` (starter models, every photograph answered) in a subprocess; the records."""
    command = [sys.executable, "-m", "funduskit", "predict", str(photos), "--out", str(out), "--quality", "off",
               "--quiet", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return {path.name: json.loads(path.read_text()) for path in sorted((out / "results").glob("*.json"))}


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """skimage.data.retina() (CC0) and a 400 px crop around its papilla (at about (205, 640))."""
    from skimage.data import retina

    folder = tmp_path_factory.mktemp("real") / "photos"
    folder.mkdir()
    photo = cv2.cvtColor(retina(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "retina.jpg"), photo)
    cv2.imwrite(str(folder / "retina-disc.png"), photo[440:840, 5:405])
    return folder


@pytest.fixture(scope="module")
def reference(real_photos: Path) -> tuple[Path, dict[str, dict]]:
    out = real_photos.parent / "onnx"
    return out, predict(real_photos, out, "--backend", "onnx")


def compare(reference: Path, other: Path, a: dict[str, dict], b: dict[str, dict]) -> dict[str, float]:
    """Worst disc and cup Dice, largest vCDR, fovea and probability differences over the photographs."""
    found = {"disc": 1.0, "cup": 1.0, "vcdr": 0.0, "fovea": 0.0, "probability": 0.0}
    assert a.keys() == b.keys() and len(a) == 2
    for name, first in a.items():
        second = b[name]
        mask_a = cv2.imread(str(reference / first["mask_file"]), cv2.IMREAD_GRAYSCALE)
        mask_b = cv2.imread(str(other / second["mask_file"]), cv2.IMREAD_GRAYSCALE)
        assert 0.001 < (mask_a < 255).mean() < 0.9 and (mask_a == 0).any(), "trivial masks: a vacuous comparison"
        found["disc"] = min(found["disc"], dice(mask_a < 255, mask_b < 255))
        found["cup"] = min(found["cup"], dice(mask_a == 0, mask_b == 0))
        found["vcdr"] = max(found["vcdr"], abs(first["vcdr"] - second["vcdr"]))
        found["probability"] = max(found["probability"], abs(first["glaucoma_probability"] - second["glaucoma_probability"]))
        if first["fovea_x"] is not None:
            found["fovea"] = max(found["fovea"], float(np.hypot(first["fovea_x"] - second["fovea_x"],
                                                                first["fovea_y"] - second["fovea_y"])))
    return found


def test_openvino_fp32_gives_the_trained_networks_answers(real_photos: Path, reference, tmp_path: Path) -> None:
    """Issue 16's agreement limits: Dice >= 0.99, vCDR within 0.01, fovea within 2 px, probability within 0.01."""
    out = tmp_path / "openvino"
    records = predict(real_photos, out, "--backend", "openvino", "--precision", "fp32")
    assert {record["view"] for record in records.values()} == {"whole", "disc"}
    found = compare(reference[0], out, reference[1], records)
    assert found["disc"] >= 0.99 and found["cup"] >= 0.99, found
    assert found["vcdr"] <= 0.01 and found["fovea"] <= 2 and found["probability"] <= 0.01, found
    run = json.loads((out / "predict.json").read_text())
    assert run["runtime"].startswith("cpu, OpenVINO fp32")


def test_precision_auto_runs_exported_networks_in_fp32(real_photos: Path, tmp_path: Path) -> None:
    predict(real_photos, tmp_path / "auto", "--backend", "openvino")
    assert "OpenVINO fp32" in json.loads((tmp_path / "auto" / "predict.json").read_text())["runtime"]


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16 / AMX): "
                                                      "OpenVINO would emulate it, and bf16 is not offered here")
def test_openvino_bf16_stays_close_on_a_real_photograph(real_photos: Path, reference, tmp_path: Path) -> None:
    """On this photograph and its crop bf16 stays close; over 49 real photographs it missed the strict
    limits (cup Dice 0.69 worst, one fovea moved: docs/performance.md), so it is opt-in."""
    out = tmp_path / "bf16"
    records = predict(real_photos, out, "--backend", "openvino", "--precision", "bf16")
    found = compare(reference[0], out, reference[1], records)
    assert found["disc"] >= 0.97 and found["cup"] >= 0.95, found
    assert found["vcdr"] <= 0.03 and found["fovea"] <= 4 and found["probability"] <= 0.05, found


def test_openvino_refuses_a_gpu_runtime_with_the_fix(tmp_path: Path) -> None:
    from funduskit.inference.model_store import RunInfo

    tiny = BenchOptions(preset="tiny", size_scale=0.2, threads=1)
    gpu = Runtime(torch.device("cuda"), precision="fp32", channels_last=False, threads=1)
    run = RunInfo(tmp_path, task_config("glaucoma", tiny), tmp_path / "model.onnx")
    with pytest.raises(FunduskitError, match="--backend onnx or --backend torch"):
        load_openvino_network(run, gpu)
