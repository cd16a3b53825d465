"""The optimised predictor gives the baseline's answers: batch-norm folding, Winograd convolutions,
channels_last (and bf16 autocast, emulated on CPUs without it) against eager fp32 NCHW on the
same weights; and ``funduskit bench --quick`` writes its JSON document.

The networks are tiny and untrained, with their last layer calibrated on a synthetic photograph
(:func:`funduskit.tools.bench.make_confident`: logits with a standard deviation of 6; at the tiny
networks' coarse maps a fifth of the pixels in the disc, the cup the disc map's top 6 %; the
paper-size networks' heads are fitted to the drawn disc) so that probability maps are confident, as a
trained network's are: thresholded masks then have real boundaries instead of flipping with every
rounding error near 0.5, and each check asserts the masks are non-trivial before comparing them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from funduskit.inference.model_store import RunInfo
from funduskit.inference.predictor import Member, PhotoPrediction, Predictor
from funduskit.runtime.device import Runtime
from funduskit.runtime.optimise import (
    ActivationOnly,
    WinogradConv2d,
    fold_batch_norms,
    optimise_for_inference,
    use_winograd_convolutions,
    winograd_available,
)
from funduskit.scoring.metrics import dice
from funduskit.tools.bench import (
    DRAWN_DISC_RED,
    SINGLE_MODEL,
    BenchOptions,
    build_ensembles,
    build_network,
    synthetic_photo,
    task_config,
)

TINY = BenchOptions(preset="tiny", size_scale=0.2, threads=1)
BASELINE = Runtime(torch.device("cpu"), precision="fp32", channels_last=False, threads=1)
OPTIMISED = Runtime(torch.device("cpu"), precision="fp32", channels_last=True, threads=1)
BF16 = Runtime(torch.device("cpu"), precision="bf16", channels_last=True, threads=1)
ENSEMBLE = {"vessel": 1, "disc": 2, "cup": 1, "fovea": 2, "glaucoma": 2}
#: Largest probability difference from the fp32 baseline, by the precision that actually ran: the
#: optimised torch mode runs under bf16 autocast where the CPU computes bf16 natively (``auto``),
#: and bf16 keeps 8 bits of mantissa (0.022 seen on an AVX-512 BF16 CPU).
PROBABILITY_TOLERANCE = {"fp32": 1e-3, "bf16 autocast": 0.05}


def ensembles(optimise: Runtime | None) -> dict[str, list[Member]]:
    """Tiny untrained ensembles (confident last layers, members of a task differ a little),
    optimised for ``optimise`` or left as they are (the baseline)."""
    result: dict[str, list[Member]] = {}
    for task, count in ENSEMBLE.items():
        members = []
        for index in range(count):
            preprocessing = ("normalize", "zero_local_mean")[index % 2] if task == "glaucoma" else None
            config = task_config(task, TINY, preprocessing)
            network = build_network(task, TINY)
            with torch.no_grad():
                for parameter in network.parameters():  # members of one task differ a little
                    parameter.mul_(1 + 0.01 * index)
            network = optimise_for_inference(network, optimise) if optimise else network.eval()
            members.append(Member(RunInfo(Path(f"{task}{index}"), config, Path("x.pt")), network))
        result[task] = members
    return result


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Two synthetic fundus photographs at a tenth of the two camera sizes."""
    return [synthetic_photo(index, 0.12) for index in range(2)]


@pytest.fixture(scope="module")
def baseline(photos: list[np.ndarray]) -> list[PhotoPrediction]:
    return Predictor(ensembles(None), BASELINE).predict(photos)


def assert_agree(reference: list[PhotoPrediction], other: list[PhotoPrediction], *, probability: float = 0.01) -> None:
    """The issue's agreement bars: disc and cup Dice >= 0.99, fovea within 1 px, probabilities within 0.01."""
    for ref, got in zip(reference, other, strict=True):
        disc, cup = ref.mask < 255, ref.mask == 0
        assert 0.002 < disc.mean() < 0.98 and cup.any(), "masks are trivial: the comparison would be vacuous"
        assert dice(disc, got.mask < 255) >= 0.99
        assert dice(cup, got.mask == 0) >= 0.99
        assert np.hypot(ref.fovea[0] - got.fovea[0], ref.fovea[1] - got.fovea[1]) <= 1.0
        assert abs(ref.glaucoma_probability - got.glaucoma_probability) <= probability
        assert np.abs(ref.disc_probability - got.disc_probability).max() <= max(probability, 0.05)


def test_optimised_predictor_agrees_with_the_fp32_baseline(photos, baseline) -> None:
    optimised = Predictor(ensembles(OPTIMISED), OPTIMISED).predict(photos)
    assert_agree(baseline, optimised, probability=1e-3)


def test_bf16_autocast_agrees_with_the_fp32_baseline(photos, baseline) -> None:
    """The precision used where the CPU computes bf16 natively (emulated, slowly, elsewhere)."""
    assert_agree(baseline, Predictor(ensembles(BF16), BF16).predict(photos))


def test_the_benchs_paper_networks_answer_one_disc_where_it_is_drawn(tmp_path: Path) -> None:
    """The bench's untrained paper-preset networks, their heads fitted on the synthetic photograph,
    answer one disc around the drawn disc and a cup inside it, as trained networks would. Before,
    their strongest response was the dark surround: a ring around the field of view that hole
    filling made the whole photograph or not, so bf16 against fp32 gave disc Dice 0.097."""
    options = BenchOptions(preset="paper", size_scale=0.5, threads=1)
    predictor = Predictor(build_ensembles(options, SINGLE_MODEL, "baseline", BASELINE, tmp_path), BASELINE)
    photo = synthetic_photo(0, 0.5)
    prediction = predictor.predict([photo])[0]
    disc, cup = prediction.mask < 255, prediction.mask == 0
    assert disc.mean() < 0.05, "the disc covers the photograph"
    assert dice(disc, photo[..., 0] > DRAWN_DISC_RED) > 0.6
    assert 0 < cup.sum() < 0.5 * disc.sum()


def test_batch_norms_are_folded_into_their_convolutions() -> None:
    network = build_network("disc", TINY).eval()
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        expected = network(x)
        folded = fold_batch_norms(network)
        got = network(x)
    assert folded > 10
    assert not [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    assert sum(isinstance(m, ActivationOnly) for m in network.modules()) == folded
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


class ConvFeedsTwo(nn.Module):
    """A convolution whose output goes to a batch norm *and* a skip: folding would be wrong."""

    in_channels, input_multiple = 3, 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        with torch.no_grad():
            self.norm.running_mean.fill_(0.5)
            self.norm.running_var.fill_(4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv(x)
        return self.norm(c) + c


def test_a_rewrite_that_changes_the_output_is_undone() -> None:
    network = ConvFeedsTwo().eval()
    fast = optimise_for_inference(network, OPTIMISED)
    assert any("undone" in item for item in fast.optimisations)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), network(x))
    assert isinstance(network.norm, nn.BatchNorm2d)  # the original is left as it was


@pytest.mark.skipif(not winograd_available(), reason="torch built without NNPACK")
def test_winograd_convolutions_match_direct_ones() -> None:
    network = build_network("vessel", TINY).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = network(x)
        assert use_winograd_convolutions(network) == sum(
            isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in network.modules())
        got = network(x)
    assert any(isinstance(m, WinogradConv2d) for m in network.modules())
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    fast = optimise_for_inference(build_network("vessel", TINY), OPTIMISED)
    assert any(item.startswith("winograd") for item in fast.optimisations) and "nchw" in fast.optimisations


def test_bench_quick_writes_the_result_document(tmp_path: Path) -> None:
    """The real command in a process of its own: OpenVINO's CPU plugin, once it has run in a process,
    has been seen to make a later torch training step in that process die of SIGSEGV (AVX2 machine,
    docs/decisions.md), so it never runs inside the test process."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "funduskit", "bench", "--quick", "--preset", "tiny", "--size-scale", "0.2",
         "--threads", "1", "--modes", "baseline,torch,onnx,openvino", "--ensemble", "1,1,1,1", "--photos", "1,2",
         "--repeats", "1", "--no-isolate", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    command = result["command"].split()
    assert command[:2] == ["funduskit", "bench"] and "--quick" in command and "tiny" in command
    assert {"cpu", "torch", "threads", "native_bf16", "kind", "cpu_flags"} <= set(result["machine"])
    assert result["machine"]["kind"] == ("avx512-bf16" if result["machine"]["native_bf16"] else "avx2")
    assert result["matmul_gflops"]["fp32"] > 0 and result["matmul_gflops"]["bf16"] > 0
    rows = {(row["task"], row["mode"]) for row in result["networks"]}
    assert rows == {(task, mode) for task in ("vessel", "disc", "fovea", "glaucoma")
                    for mode in ("baseline", "torch", "onnx", "openvino")}
    for row in result["networks"]:
        assert row["seconds_per_photo"] > 0 and row["gflop_per_photo"] > 0 and row["peak_rss_mb"] > 0
        assert row["speedup"] > 0 and 0 < row["fraction_of_peak"]
        assert row["mode"] == "baseline" or row["max_probability_difference"] < PROBABILITY_TOLERANCE[row["precision"]]
    pipelines = {(row["pipeline"], row["mode"]): row for row in result["pipelines"]}
    assert set(pipelines) == {(name, mode) for name in ("single model", "report ensemble")
                              for mode in ("baseline", "torch", "onnx", "openvino")} | {
        ("fast ensemble", "onnx"), ("fast ensemble", "openvino")}  # the starter set: exported networks only
    for mode in ("onnx", "openvino"):  # one member a task and stage; stage 1 found retina's disc, stage 2 ran
        fast_row = pipelines[("fast ensemble", mode)]
        assert fast_row["members"] == {"vessel": 1, "disc": 2, "cup": 1, "fovea": 1, "glaucoma": 1}, fast_row
        assert fast_row["disc_found"] and fast_row["seconds_per_photo"] > 0
    assert pipelines[("report ensemble", "torch")]["members"] == {"vessel": 1, "glaucoma": 1, "disc": 1, "cup": 1,
                                                                  "fovea": 1}
    assert pipelines[("single model", "onnx")]["agreement"]["disc_dice"] >= 0.99
    assert set(result["memory_flatness"]["peak_rss_mb_after"]) == {"1", "2"}
    commands = result["predict_command"]  # the real `funduskit predict --backend onnx`, in a subprocess
    assert [row["photos"] for row in commands] == [1, 2]
    assert all(row["peak_rss_mb"] > 0 and row["seconds_per_photo"] > 0 for row in commands), commands
    assert pipelines[("single model", "openvino")]["agreement"]["disc_dice"] >= 0.99
    # issue 16's targets of this CPU kind, each met or not met by a measured figure
    speedup, seconds, ensemble, fast = {"avx2": ("3", "2", "8", "1"),
                                        "avx512-bf16": ("5", "1", "4", "0.5")}[result["machine"]["kind"]]
    targets = result["targets"]
    assert {f"single-model pipeline >= {speedup}x the baseline", f"single-model pipeline < {seconds} s per photo",
            f"report ensemble < {ensemble} s per photo", f"fast ensemble < {fast} s per photo",
            "report ensemble peak memory < 2.5 GB (funduskit predict)",
            "report ensemble memory flat in the number of photos (funduskit predict)",
            "memory flat in the number of photos (single model, streamed)"} == set(targets)
    single = min((row for row in result["pipelines"] if row["pipeline"] == "single model" and row["mode"] != "baseline"),
                 key=lambda row: row["seconds_per_photo"])
    assert targets[f"single-model pipeline < {seconds} s per photo"] == {
        "mode": single["mode"], "value": single["seconds_per_photo"], "met": single["seconds_per_photo"] < float(seconds)}
    fastest = min(pipelines[("fast ensemble", mode)]["seconds_per_photo"] for mode in ("onnx", "openvino"))
    assert targets[f"fast ensemble < {fast} s per photo"]["value"] == fastest
    assert targets[f"fast ensemble < {fast} s per photo"]["met"] == (fastest < float(fast))


@pytest.mark.parametrize("kind", ["avx2", "avx512-bf16"])
def test_bench_targets_are_those_of_the_cpu_kind(kind: str) -> None:
    """Issue 16's bars of each CPU kind, whichever kind runs the test: the fastest non-baseline mode
    is judged, the report ensemble only when it was the report's 8/4/2/10, the fast ensemble only
    when an exported mode measured it."""
    from funduskit.tools.bench import REPORT_ENSEMBLE, TARGETS_BY_KIND, check_targets

    bars = TARGETS_BY_KIND[kind]
    seconds = bars["pipeline_seconds"]
    result = {
        "machine": {"kind": kind},
        "pipelines": [
            {"pipeline": "single model", "mode": "baseline", "seconds_per_photo": 4 * seconds, "speedup": 1.0},
            {"pipeline": "single model", "mode": "onnx", "seconds_per_photo": 1.2 * seconds, "speedup": 3.3},
            {"pipeline": "single model", "mode": "openvino", "seconds_per_photo": 0.9 * seconds,
             "speedup": bars["pipeline_speedup"] + 0.1},
            {"pipeline": "report ensemble", "mode": "onnx", "members": dict(REPORT_ENSEMBLE),
             "seconds_per_photo": bars["ensemble_seconds"] + 0.5, "peak_rss_mb_batch_1": 1000.0},
        ],
        "predict_command": [{"photos": 2, "peak_rss_mb": bars["ensemble_memory_mb"] - 1}],
    }
    targets = check_targets(result)
    single = next(value for name, value in targets.items() if name.startswith("single-model pipeline <"))
    assert single == {"mode": "openvino", "value": 0.9 * seconds, "met": True}
    speedup = next(value for name, value in targets.items() if name.startswith("single-model pipeline >="))
    assert speedup["met"] is True and speedup["mode"] == "openvino"
    assert targets[f"report ensemble < {bars['ensemble_seconds']:g} s per photo"]["met"] is False
    not_measured = targets[f"fast ensemble < {bars['fast_ensemble_seconds']:g} s per photo"]
    assert not_measured["met"] is False and not_measured["value"] is None and "onnx or openvino" in not_measured["why"]
    result["pipelines"].append({"pipeline": "fast ensemble", "mode": "onnx",
                                "seconds_per_photo": 0.9 * bars["fast_ensemble_seconds"]})
    measured = check_targets(result)[f"fast ensemble < {bars['fast_ensemble_seconds']:g} s per photo"]
    assert measured == {"mode": "onnx", "value": 0.9 * bars["fast_ensemble_seconds"], "met": True}
    result["pipelines"].pop()
    assert targets["report ensemble peak memory < 2.5 GB (funduskit predict)"]["met"] is True
    # a smaller ensemble is not the report's: listed, not judged on its time
    result["pipelines"][-1]["members"] = {"vessel": 1, "glaucoma": 2, "disc": 1, "cup": 1, "fovea": 2}
    result["pipelines"][-1]["seconds_per_photo"] = 0.1
    smaller = check_targets(result)[f"report ensemble < {bars['ensemble_seconds']:g} s per photo"]
    assert smaller["met"] is False and smaller["value"] is None and "2/1/1/2" in smaller["why"]
