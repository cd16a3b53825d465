"""``funduskit export`` and the ONNX Runtime backend of ``funduskit predict``: exported networks give
torch's outputs, an exported models folder predicts what the torch one predicts, and each backend
says what to do when given the other's models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from funduskit.cli import main
from funduskit.core.config import save_config
from funduskit.core.errors import FunduskitError
from funduskit.inference.model_store import MANIFEST, find_runs
from funduskit.inference.onnx_backend import OnnxNetwork, load_onnx_network
from funduskit.inference.pipeline import PredictOptions, predict_photos
from funduskit.inference.predictor import load_network
from funduskit.runs.checkpoint import save_checkpoint
from funduskit.runtime.device import Runtime
from funduskit.scoring.metrics import dice
from funduskit.tools.bench import (
    BenchOptions,
    build_network,
    synthetic_photo,
    task_config,
)
from funduskit.tools.export import export_network

TINY = BenchOptions(preset="tiny", size_scale=0.2, threads=1)
CPU = Runtime(torch.device("cpu"), precision="fp32", channels_last=True, threads=1)


@pytest.mark.parametrize("task", ["vessel", "disc", "fovea", "glaucoma"])
def test_onnx_runtime_gives_torchs_outputs(task: str, tmp_path: Path) -> None:
    network = build_network(task, TINY)
    size = task_config(task, TINY).data.input_size
    path = export_network(network, tmp_path / "model.onnx", input_size=size)
    exported = OnnxNetwork(path, threads=1)
    x = torch.randn(3, network.in_channels, size, size)  # another batch size than exported with
    with torch.inference_mode():
        expected, got = network(x), exported(x.contiguous(memory_format=torch.channels_last))
    assert isinstance(got, np.ndarray) and got.dtype == np.float32  # numpy out: no torch in the exported path
    got = torch.from_numpy(got)
    assert got.shape == expected.shape
    torch.testing.assert_close(torch.sigmoid(got), torch.sigmoid(expected), rtol=0, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, no temporary left


def test_a_network_without_vessel_branch_exports(tmp_path: Path) -> None:
    """The real preset's crop networks (``vessel_encoder=None``) keep their 4-channel input in ONNX."""
    from funduskit.models import create_model

    torch.manual_seed(0)
    network = create_model("disc_cup_segmenter", photo_encoder="test_efficientnet", vessel_encoder=None,
                           decoder_channels=[8, 8, 8]).eval()
    exported = OnnxNetwork(export_network(network, tmp_path / "model.onnx", input_size=64), threads=1)
    x = torch.randn(2, 4, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(torch.sigmoid(torch.from_numpy(exported(x))), torch.sigmoid(network(x)), rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run directory per task, as training writes them (config.yaml + best.pt)."""
    root = tmp_path_factory.mktemp("models")
    for task in ("vessel", "disc", "cup", "fovea", "glaucoma"):
        config = task_config(task, TINY)
        network = build_network(task, TINY)
        save_config(config, root / task / "config.yaml")
        save_checkpoint({"task": task, "epoch": 0, "models": {"model": network.state_dict()},
                         "config": config.to_dict()}, root / task / "best.pt")
    (root / "thresholds.json").write_text(json.dumps({"disc": 0.5, "cup": 0.45}))
    return root


@pytest.fixture(scope="module")
def exported(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    assert main(["export", "--models", str(models_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    for index in range(2):
        cv2.imwrite(str(folder / f"eye{index}.png"), cv2.cvtColor(synthetic_photo(index, 0.12), cv2.COLOR_RGB2BGR))
    return folder


def test_export_writes_a_models_folder(exported: Path) -> None:
    manifest = yaml.safe_load((exported / MANIFEST).read_text())
    assert set(manifest) == {"vessel", "disc", "cup", "fovea", "glaucoma"}
    runs = find_runs(exported)
    assert {task: len(items) for task, items in runs.items()} == dict.fromkeys(manifest, 1)
    for task, (run,) in runs.items():
        assert run.checkpoint.name == "model.onnx" and run.config.task == task
        record = json.loads((run.run_dir / "export.json").read_text())
        assert record["opset"] >= 17 and record["max_probability_difference"] < 1e-3
    assert json.loads((exported / "thresholds.json").read_text())["cup"] == 0.45


def _results(out: Path) -> dict[str, dict]:
    return {row["image_id"]: row for row in json.loads((out / "results.json").read_text())}


def test_onnx_backend_predicts_what_torch_predicts(models_dir: Path, exported: Path, photos: Path,
                                                   tmp_path: Path) -> None:
    import cv2

    torch_out, onnx_out = tmp_path / "torch", tmp_path / "onnx"
    # random tiny networks find no confident disc: grade, but answer, to compare the answers
    options = PredictOptions(device="cpu", threads=1, batch_size=2, precision="fp32", quality="off")
    predict_photos([photos], models_dir, torch_out, options, progress=False)
    summary = predict_photos([photos], exported, onnx_out, options, progress=False)  # backend "auto"
    assert "ONNX Runtime" in summary.runtime
    reference, got = _results(torch_out), _results(onnx_out)
    assert set(reference) == set(got) == {"eye0.png", "eye1.png"}
    for name, ref in reference.items():
        assert ref["status"] == got[name]["status"] == "ok"
        assert abs(ref["glaucoma_probability"] - got[name]["glaucoma_probability"]) <= 0.01
        assert np.hypot(ref["fovea_x"] - got[name]["fovea_x"], ref["fovea_y"] - got[name]["fovea_y"]) <= 1.0
        mask_ref = cv2.imread(str(torch_out / ref["mask_file"]), cv2.IMREAD_GRAYSCALE)
        mask_got = cv2.imread(str(onnx_out / got[name]["mask_file"]), cv2.IMREAD_GRAYSCALE)
        assert (mask_ref == 0).any() and (mask_ref == 128).any()  # a disc and a cup: not vacuous
        assert dice(mask_ref < 255, mask_got < 255) >= 0.99
        assert dice(mask_ref == 0, mask_got == 0) >= 0.99


def test_each_backend_says_what_to_do_with_the_others_models(models_dir: Path, exported: Path) -> None:
    onnx_run = find_runs(exported)["disc"][0]
    torch_run = find_runs(models_dir)["disc"][0]
    with pytest.raises(FunduskitError, match="--backend onnx"):
        load_network(onnx_run, CPU)
    with pytest.raises(FunduskitError, match="funduskit export"):
        load_onnx_network(torch_run, CPU)


def test_export_refuses_a_network_onnx_cannot_hold(tmp_path: Path) -> None:
    network = build_network("glaucoma", TINY)  # pools S/32 maps to 4 x 4: S = 64 gives 2 x 2
    with pytest.raises(FunduskitError, match="cannot be exported"):
        export_network(network, tmp_path / "model.onnx", input_size=64)
    assert not list(tmp_path.iterdir())


def test_the_real_presets_classifier_exports_and_float16_storage_halves_it(tmp_path: Path) -> None:
    """TF-padded Lite0 (the real preset's classifier) at 256 px: its 8 x 8 findings pooled to 4 x 4
    by a fixed kernel, which the exporter writes where the adaptive pooling's shapes were hidden."""
    import onnx
    from onnx import TensorProto

    from funduskit.models import create_model
    from funduskit.tools.export import store_float16

    torch.manual_seed(0)
    network = create_model("glaucoma_classifier", backbone="tf_efficientnet_lite0").eval()
    maps = torch.rand(2, 15, 8, 8)
    torch.testing.assert_close(network.pooled(maps), network.pool(maps))  # the same numbers as adaptive pooling
    path = export_network(network, tmp_path / "model.onnx", input_size=256)
    x = torch.randn(2, 3, 256, 256)
    with torch.inference_mode():
        expected = torch.sigmoid(network(x))
    float32_size = path.stat().st_size
    store_float16(path)
    assert path.stat().st_size < 0.55 * float32_size
    assert {t.data_type for t in onnx.load(str(path)).graph.initializer if np.prod(t.dims) >= 64} == {TensorProto.FLOAT16}
    got = torch.sigmoid(torch.from_numpy(OnnxNetwork(path, threads=1)(x)))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-2)
