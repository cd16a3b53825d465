"""Inference speed and memory on this machine: ``funduskit bench`` / ``benchmarks/inference.py``.

Three ways of running the same networks (same weights, same inputs) are measured side by side:

==============  ==========================================================================
``baseline``    eager PyTorch, fp32, NCHW, one photograph at a time (the plain way)
``torch``       the optimised predictor: :func:`funduskit.runtime.optimise.optimise_for_inference`
                (batch norms folded, Winograd 3x3 convolutions, channels_last), bf16 autocast
                where the CPU computes bf16 natively, inference mode, batches
``onnx``        ONNX Runtime on the networks exported by :func:`funduskit.tools.export.export_network`
==============  ==========================================================================

Rows:

- **per network** (vessel U-Net, disc/cup segmenter, fovea localiser, glaucoma classifier at the
  preset's sizes): seconds per photograph (median of repeats after warm-up, batch 1), photographs
  per second at batch ``--batch``, peak resident memory, FLOPs per photograph (torch's
  ``FlopCounterMode``), achieved GFLOP/s and its fraction of this machine's measured matmul peak,
  largest probability difference to the baseline;
- **pipelines** through :class:`funduskit.inference.predictor.Predictor` (preprocessing, vessel map
  shared, ensembles, mapping back, post-processing): the single-model pipeline and the report's
  full ensemble (8 classifiers, 4 disc, 2 cup, 10 fovea, one vessel network), with their
  agreement to the baseline (disc and cup Dice, fovea distance, glaucoma probability);
- **memory with the number of photographs**: peak resident memory after the first and after the
  last of ``--photos`` photographs streamed through the optimised pipeline.
- **the predict command**: ``funduskit predict --backend onnx`` itself, in a subprocess, with the
  ensemble's run directories made of the exported networks, over 2 and ``--photos``' first count
  of photographs: wall time and peak resident memory, as a screening user sees them.

The network and pipeline jobs keep glibc's default allocator in every mode, so that the baseline
timed in turns beside an optimised network runs as it does alone; the memory-over-photographs job
and the predict command (ONNX Runtime) run with the allocator setting of ``funduskit predict
--backend onnx`` (:func:`funduskit.runtime.memory.return_freed_buffers_to_system`).

Every configuration runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its
own. Networks are untrained (timing does not depend on the weights); their last layer is
calibrated so that maps are confident, as trained ones are (:func:`make_confident`), which makes
the mask agreement meaningful.
The photographs are synthetic, at the two REFUGE camera sizes (2124 x 2056 and 1634 x 1634).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from funduskit.core.tasks import TASKS
from funduskit.runs.layout import CONFIG_FILE, ONNX_FILE

#: Networks timed one by one (the cup network is the disc network's architecture).
NETWORK_TASKS: tuple[str, ...] = ("vessel", "disc", "fovea", "glaucoma")
MODES: tuple[str, ...] = ("baseline", "torch", "onnx")
SINGLE_MODEL: dict[str, int] = {"vessel": 1, "disc": 1, "cup": 1, "fovea": 1, "glaucoma": 1}
#: The report's ensembles (the vessel map is computed once).
REPORT_ENSEMBLE: dict[str, int] = {"vessel": 1, "disc": 4, "cup": 2, "fovea": 10, "glaucoma": 8}
#: The two REFUGE cameras, (height, width).
CAMERA_SIZES: tuple[tuple[int, int], ...] = ((2056, 2124), (1634, 1634))
#: Scale of the untrained classifier's last layer (confident probabilities, as a trained one's).
CONFIDENT_SCALE = 16.0
#: Tiny networks (the tests' size) for ``--preset tiny``.
TINY_KWARGS: dict[str, dict[str, Any]] = {
    "vessel": {"base_width": 4, "depth": 2},
    "disc": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8, 8]},
    "cup": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8, 8]},
    "fovea": {"photo_encoder": "test_efficientnet", "vessel_encoder": "test_efficientnet", "decoder_channels": [8, 8]},
    "glaucoma": {"backbone": "test_efficientnet"},
}
RESULT_MARK = "FUNDUSKIT_BENCH_RESULT "
TARGETS = {"pipeline_speedup": 5.0, "pipeline_seconds": 1.0, "ensemble_seconds": 6.0, "ensemble_memory_mb": 3000.0}


@dataclass
class BenchOptions:
    """What ``funduskit bench`` measures (the command-line options)."""

    preset: str = "paper"
    size_scale: float = 1.0
    threads: int = 0
    repeats: int = 3
    warmup: int = 1
    batch: int = 4
    photos: tuple[int, int] = (10, 200)
    ensemble: dict[str, int] = field(default_factory=lambda: dict(REPORT_ENSEMBLE))
    modes: tuple[str, ...] = MODES
    isolate: bool = True
    quick: bool = False
    matmul_size: int = 2048
    precision: str = "auto"  # of the optimised torch mode: auto (bf16 where native), fp32 or bf16

    def __post_init__(self) -> None:
        if self.threads <= 0:
            self.threads = os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# Networks, runtimes, photographs
# --------------------------------------------------------------------------------------------


def task_config(task: str, options: BenchOptions, preprocessing: str | None = None):  # noqa: ANN201 - TrainConfig
    """The preset configuration of ``task`` with the input size scaled (multiples of 32)."""
    from funduskit.core.config import override, preset

    config = preset(task, "cpu" if options.preset == "tiny" else options.preset)
    # the classifier pools its S/32 finding maps to pool_size x pool_size: S >= 32 * pool_size
    minimum = 32 * int(config.model.kwargs.get("pool_size", 1)) if task == "glaucoma" else 32
    size = max(minimum, round(config.data.input_size * options.size_scale / 32) * 32)
    changes: dict[str, Any] = {"data.input_size": size}
    if options.preset == "tiny":
        changes.update({f"model.kwargs.{key}": value for key, value in TINY_KWARGS[task].items()})
    if preprocessing:
        changes["data.preprocessing"] = preprocessing
    return override(config, changes)


def member_config(task: str, index: int, options: BenchOptions):  # noqa: ANN201 - TrainConfig
    """The configuration of an ensemble's ``index``-th member of ``task``: glaucoma members
    alternate the report's two preprocessings (/255, zero-local-mean)."""
    preprocessing = ("normalize", "zero_local_mean")[index % 2] if task == "glaucoma" else None
    return task_config(task, options, preprocessing)


def build_network(task: str, options: BenchOptions):  # noqa: ANN201 - nn.Module
    """The untrained network of ``task``, seeded (every mode gets the same weights; the cup
    network starts as the disc network), its last layer made confident (:func:`make_confident`)."""
    import torch

    from funduskit.models import create_model

    config = task_config(task, options)
    torch.manual_seed(TASKS.index("disc" if task == "cup" else task))
    network = create_model(config.model.name, **config.model.kwargs).eval()
    make_confident(network, task, config.data.input_size)
    return network


#: Share of the pixels above 0.5 after :func:`make_confident` (cup: the disc map's top share,
#: so the cup lies inside the disc), and the standard deviation of the calibrated logits.
FOREGROUND = {"disc": 0.2, "cup": 0.06, "fovea": 0.01}
CONFIDENT_SPREAD = 6.0


def make_confident(network, task: str, size: int) -> None:  # noqa: ANN001
    """Rescale an untrained network's last layer so its maps look like a trained network's.

    Untrained maps sit within a few hundredths of 0.5, where thresholding flips with any rounding.
    On a synthetic photograph, the first output channel's logits are shifted and scaled so that
    :data:`FOREGROUND` of the pixels are above 0.5 and the logits' standard deviation is
    :data:`CONFIDENT_SPREAD`; the classifier's last layer is scaled by :data:`CONFIDENT_SCALE`.
    Timing does not depend on it; agreement checks become meaningful.
    """
    import torch

    if task == "vessel":
        return
    if task == "glaucoma":
        with torch.no_grad():
            network.fc.weight.mul_(CONFIDENT_SCALE)
        return
    from funduskit.inference.predictor import network_input

    photo = torch.from_numpy(network_input(synthetic_photo(0, 0.25), "standardize", size)).permute(2, 0, 1)
    x = torch.cat([photo, torch.zeros(1, size, size)])[None]
    captured: list[torch.Tensor] = []
    handle = network.head.register_forward_hook(lambda _m, _i, output: captured.append(output.detach()))
    try:
        with torch.no_grad():
            network(x)
    finally:
        handle.remove()
    logits = captured[0][:, 0].flatten().double()
    threshold = float(torch.quantile(logits, 1 - FOREGROUND[task]))
    scale = CONFIDENT_SPREAD / max(float(logits.std()), 1e-12)
    with torch.no_grad():
        network.head.weight[0].mul_(scale)
        network.head.bias[0] = (network.head.bias[0] - threshold) * scale


def make_runtime(mode: str, threads: int, precision: str = "auto"):  # noqa: ANN201 - Runtime
    """The runtime of a mode: the optimised one takes ``precision`` (``auto``: bf16 where the CPU
    computes it natively, as ``funduskit predict`` does); the others are fp32 NCHW."""
    import torch

    from funduskit.runtime.device import Runtime, cpu_has_native_bf16

    torch.set_num_threads(threads)
    if mode == "torch":
        if precision == "auto":
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
        return Runtime(torch.device("cpu"), precision=precision, channels_last=True, threads=threads)
    return Runtime(torch.device("cpu"), precision="fp32", channels_last=False, threads=threads)


def prepare_for_mode(network, mode: str, runtime, onnx_path: Path | None = None, input_size: int = 0):  # noqa: ANN001, ANN201
    """``network`` as the mode runs it (a new module; ``network`` is left as it is)."""
    if mode == "baseline":
        return copy.deepcopy(network).eval()
    if mode == "torch":
        from funduskit.runtime.optimise import optimise_for_inference

        return optimise_for_inference(network, runtime)
    if mode == "onnx":
        from funduskit.inference.onnx_backend import OnnxNetwork
        from funduskit.tools.export import export_network

        assert onnx_path is not None
        if not onnx_path.is_file():
            export_network(network, onnx_path, input_size=input_size)
        return OnnxNetwork(onnx_path, threads=runtime.threads).eval()
    raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")


def precision_of(mode: str, runtime) -> str:  # noqa: ANN001
    return "bf16 autocast" if mode == "torch" and runtime.bf16 else "fp32"


def synthetic_photo(index: int, scale: float = 1.0) -> np.ndarray:
    """A fundus-like (H, W, 3) uint8 photograph at one of the two camera sizes (alternating):
    dark surround, orange retina with noise, a bright optic disc with a paler cup, dark vessels."""
    import cv2

    height, width = CAMERA_SIZES[index % len(CAMERA_SIZES)]
    height, width = max(64, round(height * scale)), max(64, round(width * scale))
    rng = np.random.default_rng(index)
    image = np.zeros((height, width, 3), np.uint8)
    centre = (width // 2, height // 2)
    radius = int(0.46 * min(height, width))
    cv2.circle(image, centre, radius, (170, 80, 40), -1)
    disc = (centre[0] + int(rng.uniform(0.2, 0.35) * radius) * (1 if index % 4 < 2 else -1),
            centre[1] + int(rng.uniform(-0.1, 0.1) * radius))
    disc_radius = max(3, int(0.16 * radius))
    cv2.circle(image, disc, disc_radius, (240, 200, 150), -1)
    cv2.circle(image, disc, max(2, int(disc_radius * rng.uniform(0.3, 0.7))), (255, 235, 210), -1)
    for angle in rng.uniform(0, 2 * np.pi, 8):
        end = (int(disc[0] + np.cos(angle) * radius), int(disc[1] + np.sin(angle) * radius))
        cv2.line(image, disc, end, (110, 30, 20), max(1, radius // 80))
    noise = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    inside = image.any(axis=2, keepdims=True)
    return np.clip(image + noise * inside, 0, 255).astype(np.uint8)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (``ru_maxrss``)."""
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes / 1024 if sys.platform != "darwin" else kilobytes / 2**20


def _interleaved_seconds(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, timed in turns (one call of each per round), so that load
    from other processes falls on all of them alike: their ratio is what it is on a quiet machine."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(max(1, repeats)):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _median_seconds(function: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------------------------
# Jobs (each runs in its own process when isolated)
# --------------------------------------------------------------------------------------------


def job_machine(options: BenchOptions) -> dict[str, Any]:
    """Measured matmul peaks (fp32, bf16) and FLOPs per photograph of each network."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(options.threads)
    peaks = {"fp32": _matmul_gflops(torch.float32, options.matmul_size, options.repeats),
             "bf16": _matmul_gflops(torch.bfloat16, options.matmul_size, options.repeats)}
    networks = {}
    for task in NETWORK_TASKS:
        network = build_network(task, options)
        size = task_config(task, options).data.input_size
        x = torch.zeros(1, network.in_channels, size, size)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            network(x)
        networks[task] = {"input": [network.in_channels, size, size], "gflop": counter.get_total_flops() / 1e9,
                          "mparams": sum(p.numel() for p in network.parameters()) / 1e6,
                          "architecture": task_config(task, options).model.kwargs | {"name": task_config(task, options).model.name}}
    return {"matmul_gflops": peaks, "networks": networks}


def _matmul_gflops(dtype, size: int, repeats: int) -> float:  # noqa: ANN001
    """GFLOP/s of an n x n matmul in ``dtype``; n grows from 256 to ``size`` while one product
    takes under half a second (emulated bf16 is thousands of times slower than native)."""
    import torch

    n = 256
    while True:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        seconds = _median_seconds(lambda: a @ b, max(2, repeats // 2), 1)
        if n >= size or seconds > 0.5:
            return 2 * n**3 / seconds / 1e9
        n = min(size, n * 2)


def job_network(options: BenchOptions, task: str, mode: str, work: Path) -> dict[str, Any]:
    """One network in one mode: s/photo at batch 1, photos/s at ``batch``, its outputs saved."""
    import torch

    runtime = make_runtime(mode, options.threads, options.precision)
    size = task_config(task, options).data.input_size
    base = build_network(task, options)
    start = time.perf_counter()
    network = prepare_for_mode(base, mode, runtime, work / f"{task}.onnx", size)
    setup = time.perf_counter() - start
    del base
    generator = torch.Generator().manual_seed(100 + TASKS.index(task))
    channels = 3 if task in ("vessel", "glaucoma") else 4
    x = torch.randn(options.batch, channels, size, size, generator=generator)
    if getattr(network, "prefers_channels_last", False):
        x = x.contiguous(memory_format=torch.channels_last)

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), runtime.autocast():
            return torch.sigmoid(network(batch).float())

    single = x[:1]
    output = run(single)
    np.save(work / f"{task}-{mode}.npy", output.numpy())
    seconds = _median_seconds(lambda: run(single), options.repeats, options.warmup)
    row: dict[str, Any] = {"task": task, "mode": mode, "precision": precision_of(mode, runtime),
                           "optimisations": ", ".join(getattr(network, "optimisations", [])) or "-",
                           "setup_s": setup, "seconds_per_photo": seconds, "batch": 1, "photos_per_second": 1 / seconds}
    if mode != "baseline" and options.batch > 1:
        batched = _median_seconds(lambda: run(x), max(1, options.repeats // 2), 1)
        row.update(batch=options.batch, photos_per_second=options.batch / batched)
    row["peak_rss_mb"] = peak_rss_mb()
    if mode != "baseline":  # the baseline beside it, in turns: a ratio the machine's load cancels from
        baseline_runtime = make_runtime("baseline", options.threads)
        baseline = build_network(task, options)
        plain = x[:1].contiguous()

        def run_baseline() -> torch.Tensor:
            with torch.inference_mode(), baseline_runtime.autocast():
                return torch.sigmoid(baseline(plain).float())

        run_baseline()
        paired = _interleaved_seconds({"baseline": run_baseline, mode: lambda: run(single)}, options.repeats)
        row["paired_seconds"] = paired
        row["paired_speedup"] = paired["baseline"] / paired[mode]
    return row


def _ensemble(options: BenchOptions, counts: dict[str, int], mode: str, runtime, work: Path):  # noqa: ANN001, ANN202
    """The predictor's ensembles: ``counts[task]`` members of each task, the glaucoma members
    alternating the two preprocessings; members of a task share weights (timing only)."""
    from funduskit.inference.model_store import RunInfo
    from funduskit.inference.predictor import Member

    ensembles: dict[str, list[Member]] = {}
    for task in TASKS:
        exported = mode == "onnx" and (work / f"{task}.onnx").is_file()
        base = None if exported else build_network(task, options)  # as `predict --backend onnx`: no torch model
        members = []
        for index in range(counts[task]):
            config = member_config(task, index, options)
            network = prepare_for_mode(base, mode, runtime, work / f"{task}.onnx", config.data.input_size)
            run = RunInfo(run_dir=Path(f"untrained-{task}-{index}"), config=config, checkpoint=Path("untrained.pt"))
            members.append(Member(run, network))
        ensembles[task] = members
        del base
    return ensembles


def job_pipeline(options: BenchOptions, name: str, counts: dict[str, int], mode: str, work: Path) -> dict[str, Any]:
    """The whole predictor (preprocessing to post-processed outputs) on synthetic photographs."""
    from funduskit.inference.predictor import Predictor

    runtime = make_runtime(mode, options.threads, options.precision)
    start = time.perf_counter()
    predictor = Predictor(_ensemble(options, counts, mode, runtime, work), runtime)
    setup = time.perf_counter() - start
    scale = options.size_scale if options.preset == "tiny" else 1.0
    photos = [synthetic_photo(index, scale) for index in range(2)]
    first = [predictor.predict([photo])[0] for photo in photos]
    np.savez_compressed(
        work / f"pipeline-{name}-{mode}.npz",
        **{f"mask{i}": p.mask for i, p in enumerate(first)},
        fovea=np.array([p.fovea for p in first]), glaucoma=np.array([p.glaucoma_probability for p in first]),
    )
    turn = iter(range(10**9))
    seconds = _median_seconds(lambda: predictor.predict([photos[next(turn) % 2]]), options.repeats, options.warmup - 1)
    row: dict[str, Any] = {"pipeline": name, "mode": mode, "members": dict(counts), "setup_s": setup,
                           "precision": precision_of(mode, runtime), "seconds_per_photo": seconds, "batch": 1,
                           "photos_per_second": 1 / seconds}
    row["peak_rss_mb_batch_1"] = peak_rss_mb()
    if mode != "baseline" and options.batch > 1:
        batch = [photos[i % 2] for i in range(options.batch)]
        batched = _median_seconds(lambda: predictor.predict(batch), max(1, options.repeats // 2), 0)
        row.update(batch=options.batch, photos_per_second=options.batch / batched)
    row["peak_rss_mb"] = peak_rss_mb()
    if mode != "baseline" and counts == SINGLE_MODEL:  # the baseline beside it, in turns (see job_network)
        baseline_runtime = make_runtime("baseline", options.threads)
        baseline = Predictor(_ensemble(options, counts, "baseline", baseline_runtime, work), baseline_runtime)
        baseline.predict([photos[0]])
        turns = {"baseline": iter(range(10**9)), mode: iter(range(10**9))}
        paired = _interleaved_seconds({
            "baseline": lambda: baseline.predict([photos[next(turns["baseline"]) % 2]]),
            mode: lambda: predictor.predict([photos[next(turns[mode]) % 2]]),
        }, options.repeats)
        row["paired_seconds"] = paired
        row["paired_speedup"] = paired["baseline"] / paired[mode]
    return row


def job_stream(options: BenchOptions, counts: dict[str, int], mode: str, work: Path) -> dict[str, Any]:
    """Peak resident memory after the first ``photos[0]`` and after all ``photos[1]`` photographs
    streamed (made one batch at a time) through the predictor."""
    from funduskit.inference.predictor import Predictor

    runtime = make_runtime(mode, options.threads, options.precision)
    if mode == "onnx":  # as `funduskit predict --backend onnx` sets the process's allocator
        from funduskit.runtime.memory import return_freed_buffers_to_system

        return_freed_buffers_to_system()
    predictor = Predictor(_ensemble(options, counts, mode, runtime, work), runtime)
    scale = options.size_scale if options.preset == "tiny" else 1.0
    checkpoints = sorted(set(options.photos))
    memory: dict[str, float] = {}
    done, start = 0, time.perf_counter()
    while done < checkpoints[-1]:
        size = min(options.batch, checkpoints[-1] - done)
        predictions = predictor.predict([synthetic_photo(done + i, scale) for i in range(size)])
        del predictions
        done += size
        for checkpoint in checkpoints:
            if done >= checkpoint and str(checkpoint) not in memory:
                memory[str(checkpoint)] = peak_rss_mb()
    return {"mode": mode, "members": dict(counts), "batch": options.batch, "peak_rss_mb_after": memory,
            "seconds_per_photo": (time.perf_counter() - start) / done}


def job_command(options: BenchOptions, counts: dict[str, int], photos: int, work: Path) -> dict[str, Any]:
    """The real ``funduskit predict --backend onnx`` in a subprocess, over ``photos`` synthetic JPEG
    photographs, with ``counts`` run directories per task made of the exported networks in ``work``
    (hard links): its wall time and peak resident memory (the child's ``ru_maxrss``)."""
    import cv2

    from funduskit.core.config import save_config

    models = work / "predict-models"
    for task in TASKS:
        for index in range(counts[task]):
            run_dir = models / f"{task}-{index}"
            save_config(member_config(task, index, options), run_dir / CONFIG_FILE)
            if not (run_dir / ONNX_FILE).exists():
                try:
                    os.link(work / f"{task}.onnx", run_dir / ONNX_FILE)
                except OSError:  # a file system without hard links
                    shutil.copyfile(work / f"{task}.onnx", run_dir / ONNX_FILE)
    folder = work / f"predict-photos-{photos}"
    folder.mkdir(exist_ok=True)
    scale = options.size_scale if options.preset == "tiny" else 1.0
    for index in range(photos):
        cv2.imwrite(str(folder / f"photo{index:04d}.jpg"), cv2.cvtColor(synthetic_photo(index, scale), cv2.COLOR_RGB2BGR))
    command = [sys.executable, "-m", "funduskit", "predict", str(folder), "--models", str(models),
               "--out", str(work / f"predict-out-{photos}"), "--backend", "onnx", "--quiet",
               "--threads", str(options.threads)]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        return {"error": f"funduskit predict failed: {(completed.stderr.strip().splitlines() or ['?'])[-1]}"}
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"mode": "onnx", "members": dict(counts), "photos": photos, "seconds": seconds,
            "seconds_per_photo": seconds / photos, "peak_rss_mb": peak,
            "command": "funduskit predict PHOTOS --models MODELS --out OUT --backend onnx --quiet"}


def run_job(kind: str, options: BenchOptions, work: Path, **arguments: Any) -> dict[str, Any]:
    """Run a job here, or in a fresh Python process when ``options.isolate`` (its own ``ru_maxrss``)."""
    if not options.isolate:
        return _JOBS[kind](options, work=work, **arguments) if kind != "machine" else job_machine(options)
    payload = json.dumps({"kind": kind, "options": _options_dict(options), "work": str(work), "arguments": arguments})
    environment = {**os.environ, "OMP_NUM_THREADS": str(options.threads), "HF_HUB_OFFLINE": "1",
                   "PYTHONWARNINGS": "ignore"}
    completed = subprocess.run([sys.executable, "-m", "funduskit.tools.bench", "--job", payload],
                               capture_output=True, text=True, env=environment, check=False)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    error = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"{kind} {arguments} failed (exit {completed.returncode}): {error}"}


_JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "network": lambda options, work, **a: job_network(options, a["task"], a["mode"], work),
    "pipeline": lambda options, work, **a: job_pipeline(options, a["name"], a["counts"], a["mode"], work),
    "stream": lambda options, work, **a: job_stream(options, a["counts"], a["mode"], work),
    "command": lambda options, work, **a: job_command(options, a["counts"], a["photos"], work),
}


def _options_dict(options: BenchOptions) -> dict[str, Any]:
    data = asdict(options)
    data["photos"], data["modes"] = list(options.photos), list(options.modes)
    return data


def _options_from_dict(data: dict[str, Any]) -> BenchOptions:
    data = dict(data)
    data["photos"], data["modes"] = tuple(data["photos"]), tuple(data["modes"])
    return BenchOptions(**data)


def _child(payload: str) -> int:
    """Entry of a job process: run it, print its result on one marked line."""
    import warnings

    warnings.filterwarnings("ignore")
    job = json.loads(payload)
    options = _options_from_dict(job["options"])
    options.isolate = False
    result = run_job(job["kind"], options, Path(job["work"]), **job["arguments"])
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# The whole benchmark
# --------------------------------------------------------------------------------------------


def machine_description(threads: int) -> dict[str, Any]:
    """CPU model, cores, library versions, threads."""
    import torch

    from funduskit import __version__
    from funduskit.runtime.device import cpu_has_native_bf16
    from funduskit.runtime.optimise import winograd_available

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": model, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort_version,
        "funduskit": __version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "avx512": " avx512f" in flags, "native_bf16": cpu_has_native_bf16(), "nnpack_winograd": winograd_available(),
    }


def _agreement_networks(work: Path, task: str, mode: str) -> float | None:
    try:
        reference = np.load(work / f"{task}-baseline.npy")
        other = np.load(work / f"{task}-{mode}.npy")
    except OSError:
        return None
    return float(np.abs(reference - other).max())


def _agreement_pipeline(work: Path, name: str, mode: str) -> dict[str, float] | None:
    from funduskit.scoring.metrics import dice

    try:
        reference = np.load(work / f"pipeline-{name}-baseline.npz")
        other = np.load(work / f"pipeline-{name}-{mode}.npz")
    except OSError:
        return None
    masks = [key for key in reference.files if key.startswith("mask")]
    return {
        "disc_dice": min(dice(reference[k] < 255, other[k] < 255) for k in masks),
        "cup_dice": min(dice(reference[k] == 0, other[k] == 0) for k in masks),
        "fovea_px": float(np.linalg.norm(reference["fovea"] - other["fovea"], axis=1).max()),
        "glaucoma_probability": float(np.abs(reference["glaucoma"] - other["glaucoma"]).max()),
    }


def run_benchmark(options: BenchOptions, command: str, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every configuration and return the result document (what ``--out`` holds)."""
    result: dict[str, Any] = {"command": command, "machine": machine_description(options.threads),
                              "options": _options_dict(options), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="funduskit-bench-") as folder:
        work = Path(folder)
        log("measuring the matmul peak and counting FLOPs")
        machine = run_job("machine", options, work)
        result["matmul_gflops"] = machine.get("matmul_gflops", {})
        flops = machine.get("networks", {})
        result["networks"] = []
        for task in NETWORK_TASKS:
            for mode in options.modes:
                log(f"network {task} ({mode})")
                row = run_job("network", options, work, task=task, mode=mode)
                row.setdefault("task", task)
                row.setdefault("mode", mode)
                if task in flops and "seconds_per_photo" in row:
                    row["gflop_per_photo"] = flops[task]["gflop"]
                    row["mparams"] = flops[task]["mparams"]
                    row["input"] = flops[task]["input"]
                    achieved = flops[task]["gflop"] / row["seconds_per_photo"]
                    peak = result["matmul_gflops"].get("bf16" if "bf16" in row["precision"] else "fp32")
                    row["achieved_gflops"] = achieved
                    row["fraction_of_peak"] = achieved / peak if peak else None
                row["max_probability_difference"] = _agreement_networks(work, task, mode)
                result["networks"].append(row)
        result["pipelines"] = []
        for name, counts in (("single model", SINGLE_MODEL), ("report ensemble", options.ensemble)):
            for mode in options.modes:
                log(f"pipeline {name} ({mode})")
                row = run_job("pipeline", options, work, name=name, counts=counts, mode=mode)
                row.setdefault("pipeline", name)
                row.setdefault("mode", mode)
                row["agreement"] = _agreement_pipeline(work, name, mode) if mode != "baseline" else None
                result["pipelines"].append(row)
        stream_mode = "onnx" if "onnx" in options.modes else "torch"  # the fastest here
        log(f"memory over {options.photos[-1]} photographs ({stream_mode}, single model)")
        result["memory_flatness"] = run_job("stream", options, work, counts=SINGLE_MODEL, mode=stream_mode)
        result["predict_command"] = []
        if "onnx" in options.modes:
            for photos in sorted({2, options.photos[0]}):
                log(f"funduskit predict --backend onnx over {photos} photographs (report ensemble)")
                result["predict_command"].append(
                    run_job("command", options, work, counts=options.ensemble, photos=photos))
    _add_speedups(result)
    result["targets"] = check_targets(result)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return result


def _add_speedups(result: dict[str, Any]) -> None:
    """``speedup``: the baseline's seconds per photo over this row's. Where the row's job also
    timed the baseline in turns with it (``paired_speedup``: same process, same load), that ratio
    is used; else the ratio of the two rows (``separate_speedup``, separate processes)."""
    for rows, key in ((result["networks"], "task"), (result["pipelines"], "pipeline")):
        baselines = {row[key]: row.get("seconds_per_photo") for row in rows if row["mode"] == "baseline"}
        for row in rows:
            base = baselines.get(row[key])
            mine = row.get("seconds_per_photo")
            row["separate_speedup"] = base / mine if base and mine else None
            row["speedup"] = row.get("paired_speedup") or row["separate_speedup"]


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the measured figure and whether it is met (best mode)."""
    def best(name: str) -> dict[str, Any] | None:
        rows = [r for r in result["pipelines"] if r["pipeline"] == name and r["mode"] != "baseline"
                and r.get("seconds_per_photo")]
        return min(rows, key=lambda r: r["seconds_per_photo"]) if rows else None

    single, ensemble = best("single model"), best("report ensemble")
    targets: dict[str, Any] = {}
    if single:
        targets["single-model pipeline >= 5x the baseline"] = {
            "mode": single["mode"], "value": single.get("speedup"),
            "met": bool(single.get("speedup") and single["speedup"] >= TARGETS["pipeline_speedup"])}
        targets["single-model pipeline < 1 s per photo"] = {
            "mode": single["mode"], "value": single["seconds_per_photo"],
            "met": single["seconds_per_photo"] < TARGETS["pipeline_seconds"]}
    if ensemble:
        targets["report ensemble < 6 s per photo"] = {
            "mode": ensemble["mode"], "value": ensemble["seconds_per_photo"],
            "met": ensemble["seconds_per_photo"] < TARGETS["ensemble_seconds"]}
    commands = [row for row in result.get("predict_command", []) if "peak_rss_mb" in row]
    if commands:  # the real command, at its default batch
        peak = max(row["peak_rss_mb"] for row in commands)
        targets["report ensemble peak memory < 3 GB (funduskit predict)"] = {
            "mode": "onnx", "value": peak, "met": peak < TARGETS["ensemble_memory_mb"]}
    elif ensemble:  # no ONNX Runtime here: the predictor at batch 1, the command's default on CPU
        peak = ensemble.get("peak_rss_mb_batch_1")
        targets["report ensemble peak memory < 3 GB (pipeline, batch 1)"] = {
            "mode": ensemble["mode"], "value": peak, "met": bool(peak and peak < TARGETS["ensemble_memory_mb"])}
    if len(commands) >= 2:
        targets["report ensemble memory flat in the number of photos (funduskit predict)"] = {
            "value": {str(row["photos"]): row["peak_rss_mb"] for row in commands},
            "met": commands[-1]["peak_rss_mb"] <= commands[0]["peak_rss_mb"] * 1.05 + 50}
    after = result.get("memory_flatness", {}).get("peak_rss_mb_after", {})
    if len(after) >= 2:
        values = [after[k] for k in sorted(after, key=int)]
        targets["memory flat in the number of photos (single model, streamed)"] = {
            "value": after, "met": values[-1] <= values[0] * 1.05 + 50}
    return targets


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.1e}"
    return str(value)


def render(result: dict[str, Any]) -> list[Any]:
    """The rich tables of a result document."""
    from rich.table import Table

    machine = result["machine"]
    peaks = result.get("matmul_gflops", {})
    title = (f"{machine['cpu']}, {machine['threads']} thread(s), torch {machine['torch']}, "
             f"onnxruntime {machine['onnxruntime']}; matmul peak fp32 {_number(peaks.get('fp32'), 0)} GFLOP/s, "
             f"bf16 {_number(peaks.get('bf16'), 1)} GFLOP/s")
    networks = Table(title=f"Networks — {title}", title_justify="left")
    for column in ("network", "input", "mode", "precision", "s/photo", "photos/s (batch)", "speed-up",
                   "(separate)", "peak MB", "GFLOP/photo", "GFLOP/s", "% peak", "max |Δp|"):
        networks.add_column(column, justify="left" if column in ("network", "mode", "precision") else "right")
    for row in result["networks"]:
        if "error" in row:
            networks.add_row(row["task"], "", row["mode"], f"[red]{row['error'][:60]}")
            continue
        fraction = row.get("fraction_of_peak")
        networks.add_row(
            row["task"], "x".join(map(str, row.get("input", []))), row["mode"], row["precision"],
            _number(row["seconds_per_photo"], 3), f"{_number(row['photos_per_second'])} ({row['batch']})",
            _number(row.get("speedup")), _number(row.get("separate_speedup")), _number(row.get("peak_rss_mb"), 0),
            _number(row.get("gflop_per_photo"), 1),
            _number(row.get("achieved_gflops"), 1), _number(fraction * 100 if fraction else None, 0),
            _number(row.get("max_probability_difference"), 4) if row["mode"] != "baseline" else "",
        )
    pipelines = Table(title="Pipelines (photo in, post-processed answers out; synthetic 2124x2056 / 1634x1634 "
                            "photos); speed-up: baseline timed in turns in the same process where shown, else "
                            "separate runs", title_justify="left")
    for column in ("pipeline", "mode", "precision", "s/photo", "photos/s (batch)", "speed-up", "(separate)",
                   "peak MB (batch 1)", "peak MB", "disc Dice", "cup Dice", "fovea px", "|Δ prob|"):
        pipelines.add_column(column, justify="left" if column in ("pipeline", "mode", "precision") else "right")
    for row in result["pipelines"]:
        if "error" in row:
            pipelines.add_row(row["pipeline"], row["mode"], f"[red]{row['error'][:60]}")
            continue
        agreement = row.get("agreement") or {}
        pipelines.add_row(
            row["pipeline"], row["mode"], row["precision"], _number(row["seconds_per_photo"], 3),
            f"{_number(row['photos_per_second'])} ({row['batch']})", _number(row.get("speedup")),
            _number(row.get("separate_speedup")), _number(row.get("peak_rss_mb_batch_1"), 0),
            _number(row.get("peak_rss_mb"), 0), _number(agreement.get("disc_dice"), 4),
            _number(agreement.get("cup_dice"), 4), _number(agreement.get("fovea_px"), 2),
            _number(agreement.get("glaucoma_probability"), 4),
        )
    command = Table(title="funduskit predict --backend onnx, report ensemble (real command, default batch; "
                          "time includes loading the networks)", title_justify="left")
    for column in ("photos", "wall s", "s/photo", "peak MB"):
        command.add_column(column, justify="right")
    for row in result.get("predict_command", []):
        if "error" in row:
            command.add_row(f"[red]{row['error'][:80]}")
            continue
        command.add_row(str(row["photos"]), _number(row["seconds"], 1), _number(row["seconds_per_photo"]),
                        _number(row["peak_rss_mb"], 0))
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "measured", "met"):
        targets.add_column(column)
    for name, target in result.get("targets", {}).items():
        value = target["value"]
        shown = ", ".join(f"{k} photos: {v:.0f} MB" for k, v in value.items()) if isinstance(value, dict) else _number(value)
        targets.add_row(name + (f" ({target['mode']})" if "mode" in target else ""), shown,
                        "[green]yes" if target["met"] else "[red]no")
    return [networks, pipelines, command, targets]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``funduskit bench`` and ``benchmarks/inference.py``."""
    parser.add_argument("--out", type=Path, default=None, metavar="JSON", help="write the result document here")
    parser.add_argument("--quick", action="store_true",
                        help="a short version: 2 repeats, batch 2, 2 and 4 photos, ensembles of 2/1/1/2")
    parser.add_argument("--preset", choices=("paper", "cpu", "tiny"), default="paper",
                        help="networks and sizes: the paper preset (default), the cpu preset, or tiny test networks")
    parser.add_argument("--size-scale", type=float, default=1.0, metavar="F", help="scale the input sizes")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N", help="timed repeats (default 3)")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="batch size of the batched rows (default 4)")
    parser.add_argument("--photos", type=str, default=None, metavar="A,B",
                        help="photographs streamed for the memory check (default 10,200)")
    parser.add_argument("--ensemble", type=str, default=None, metavar="G,D,C,F",
                        help="ensemble sizes: glaucoma, disc, cup, fovea (default 8,4,2,10)")
    parser.add_argument("--modes", type=str, default=",".join(MODES), metavar="M,...",
                        help=f"which of {', '.join(MODES)} (default all)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="of the optimised torch mode (default auto: bf16 autocast where the CPU computes it "
                             "natively, as funduskit predict does)")
    parser.add_argument("--no-isolate", action="store_true",
                        help="run every configuration in this process (memory figures then are cumulative)")
    return parser


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    quick = bool(args.quick)
    ensemble_text = args.ensemble or ("2,1,1,2" if quick else "8,4,2,10")
    try:
        glaucoma, disc, cup, fovea = (int(v) for v in ensemble_text.split(","))
        photos = tuple(int(v) for v in (args.photos or ("2,4" if quick else "10,200")).split(","))
    except ValueError as error:
        from funduskit.core.errors import FunduskitError

        raise FunduskitError(f"--ensemble takes four counts G,D,C,F and --photos two counts A,B ({error})") from error
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or "baseline" not in modes or len(photos) != 2 or min(photos) < 1:
        from funduskit.core.errors import FunduskitError

        raise FunduskitError(f"--modes must include baseline and come from {', '.join(MODES)}; --photos takes "
                             f"two positive counts (got modes {modes}, photos {photos})")
    return BenchOptions(
        preset=args.preset, size_scale=args.size_scale, threads=args.threads,
        repeats=args.repeats or (2 if quick else 3), warmup=1, batch=args.batch or (2 if quick else 4),
        photos=photos, ensemble={"vessel": 1, "glaucoma": glaucoma, "disc": disc, "cup": cup, "fovea": fovea},
        modes=modes, isolate=not args.no_isolate, quick=quick, matmul_size=1024 if quick else 2048,
        precision=args.precision,
    )


def main(argv: Sequence[str] | None = None, *, program: str = "funduskit bench") -> int:
    """Run the benchmark from the command line; prints the tables, writes ``--out``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--job"]:
        return _child(argv[1])
    args = add_arguments(argparse.ArgumentParser(prog=program, description=__doc__.split("\n\n")[0])).parse_args(argv)
    return run_from_args(args, program)


def reproduce_command(args: argparse.Namespace, program: str) -> str:
    """The command line that repeats a run: ``program`` and every option not at its default."""
    defaults = vars(add_arguments(argparse.ArgumentParser()).parse_args([]))
    parts = [program]
    for name, value in vars(args).items():
        if name not in defaults or value == defaults[name] or name.startswith("_"):
            continue
        flag = "--" + name.replace("_", "-")
        parts.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(parts[:1]).strip("'") + (" " + shlex.join(parts[1:]) if parts[1:] else "")


def run_from_args(args: argparse.Namespace, program: str = "funduskit bench") -> int:
    """Run with parsed options: print the tables, write ``--out``; returns the exit status."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200)
    command = reproduce_command(args, program)
    options = options_from_args(args)
    result = run_benchmark(options, command, log=lambda text: console.print(f"[dim]{text}", soft_wrap=True))
    for table in render(result):
        console.print(table)
    console.print(f"Reproduce with: {command}", soft_wrap=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
