"""The OpenVINO backend and ``--backend auto``'s measured choice: OpenVINO fp32 gives ONNX Runtime's
outputs (tiny exports; the trained starter networks on a real photograph and a disc crop of it),
bf16 stays close and is opt-in, and the choice is measured once and remembered."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from funduskit.core.errors import FunduskitError
from funduskit.inference import backend_choice
from funduskit.inference.onnx_backend import OnnxNetwork
from funduskit.inference.openvino_backend import OpenVinoNetwork, load_openvino_network
from funduskit.inference.pipeline import PredictEngine, PredictOptions
from funduskit.runtime.device import Runtime, cpu_has_native_bf16
from funduskit.scoring.metrics import dice
from funduskit.tools.bench import BenchOptions, build_network, task_config
from funduskit.tools.export import export_network

pytest.importorskip("openvino")
TINY = BenchOptions(preset="tiny", size_scale=0.2, threads=1)


@pytest.mark.parametrize("task", ["vessel", "disc", "fovea", "glaucoma"])
def test_openvino_gives_onnx_runtimes_outputs(task: str, tmp_path: Path) -> None:
    network = build_network(task, TINY)
    size = task_config(task, TINY).data.input_size
    path = export_network(network, tmp_path / "model.onnx", input_size=size)
    x = torch.randn(3, network.in_channels, size, size)
    expected = OnnxNetwork(path, threads=1)(x)
    got = OpenVinoNetwork(path, threads=1, precision="fp32")(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == expected.shape and got.dtype == torch.float32
    torch.testing.assert_close(torch.sigmoid(got), torch.sigmoid(expected), rtol=0, atol=1e-4)


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


def predict_records(photos: Path, out: Path, **options: object) -> dict[str, dict]:
    PredictEngine(None, PredictOptions(quality="off", **options)).predict([photos], out, progress=False)
    return {path.name: json.loads(path.read_text()) for path in sorted((out / "results").glob("*.json"))}


def compare(reference: Path, other: Path, a: dict[str, dict], b: dict[str, dict]) -> dict[str, float]:
    """Worst disc and cup Dice, largest vCDR, fovea and probability differences over the photographs."""
    found = {"disc": 1.0, "cup": 1.0, "vcdr": 0.0, "fovea": 0.0, "probability": 0.0}
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


@pytest.fixture(scope="module")
def reference(real_photos: Path) -> tuple[Path, dict[str, dict]]:
    out = real_photos.parent / "onnx"
    return out, predict_records(real_photos, out, backend="onnx")


def test_openvino_fp32_gives_the_trained_networks_answers(real_photos: Path, reference, tmp_path: Path) -> None:
    """Issue 16's agreement limits: Dice >= 0.99, vCDR within 0.01, fovea within 2 px, probability within 0.01."""
    out = tmp_path / "openvino"
    records = predict_records(real_photos, out, backend="openvino", precision="fp32")
    assert {record["view"] for record in records.values()} == {"whole", "disc"}
    found = compare(reference[0], out, reference[1], records)
    assert found["disc"] >= 0.99 and found["cup"] >= 0.99, found
    assert found["vcdr"] <= 0.01 and found["fovea"] <= 2 and found["probability"] <= 0.01, found


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16 / AMX): "
                                                      "OpenVINO would emulate it, and bf16 is not offered here")
def test_openvino_bf16_stays_close_and_is_only_used_when_asked_for(real_photos: Path, reference, tmp_path: Path) -> None:
    """On this real photograph and its crop bf16 stays close; over 49 real photographs it missed the
    strict limits (cup Dice 0.69 worst, one fovea moved: docs/performance.md), so ``auto`` precision
    runs exported networks in fp32."""
    out = tmp_path / "bf16"
    records = predict_records(real_photos, out, backend="openvino", precision="bf16")
    found = compare(reference[0], out, reference[1], records)
    assert found["disc"] >= 0.97 and found["cup"] >= 0.95, found
    assert found["vcdr"] <= 0.03 and found["fovea"] <= 4 and found["probability"] <= 0.05, found
    assert "OpenVINO fp32" in PredictEngine(None, PredictOptions(backend="openvino")).runtime_text  # auto precision


def test_auto_measures_once_and_remembers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend_choice.CACHE_VARIABLE, str(tmp_path / "cache"))
    size = task_config("glaucoma", TINY).data.input_size
    path = export_network(build_network("glaucoma", TINY), tmp_path / "model.onnx", input_size=size)
    calls: list[float] = []
    real = backend_choice.time_backends

    def counted(networks, threads, rounds=3):  # noqa: ANN001, ANN202
        calls.append(1)
        return real(networks, threads, rounds)

    monkeypatch.setattr(backend_choice, "time_backends", counted)
    first = backend_choice.choose_export_backend([(path, size)], threads=1)
    second = backend_choice.choose_export_backend([(path, size)], threads=1)
    assert first == second and len(calls) == 1
    cache = json.loads((tmp_path / "cache" / backend_choice.CACHE_FILE).read_text())
    (entry,) = cache.values()
    assert entry["backend"] == min(entry["seconds"], key=entry["seconds"].get) == first
    monkeypatch.setattr(backend_choice, "openvino_available", lambda: False)
    assert backend_choice.choose_export_backend([(path, size)], threads=1) == "onnx"


def test_openvino_refuses_a_gpu_runtime_with_the_fix(tmp_path: Path) -> None:
    from funduskit.inference.model_store import RunInfo

    gpu = Runtime(torch.device("cuda"), precision="fp32", channels_last=False, threads=1)
    run = RunInfo(tmp_path, task_config("glaucoma", TINY), tmp_path / "model.onnx")
    with pytest.raises(FunduskitError, match="--backend onnx or --backend torch"):
        load_openvino_network(run, gpu)
