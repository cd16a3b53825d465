"""The benchmark's jobs (the matmul peak and FLOPs, one network, a pipeline, memory over streamed
photographs, the real predict command) and how each runs in its own process.

:func:`run_job` starts ``python -m funduskit.tools.bench.jobs --job PAYLOAD`` (the job's kind, the
options and its arguments as JSON) when the options isolate; the child runs the job and prints its
result on one line marked :data:`RESULT_MARK`, so that its peak resident memory is its own.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from funduskit.core.tasks import TASKS
from funduskit.runs.layout import CONFIG_FILE, ONNX_FILE
from funduskit.runtime.memory import peak_rss_mb
from funduskit.tools.bench.networks import (
    build_ensembles,
    build_network,
    make_runtime,
    member_config,
    precision_of,
    prepare_for_mode,
    synthetic_photo,
    task_config,
)
from funduskit.tools.bench.options import CAMERA_SIZES, NETWORK_TASKS, SINGLE_MODEL, BenchOptions
from funduskit.tools.bench.timing import (
    interleaved_seconds,
    matmul_gflops,
    median_seconds,
)

RESULT_MARK = "FUNDUSKIT_BENCH_RESULT "


def job_machine(options: BenchOptions) -> dict[str, Any]:
    """Measured matmul peaks (fp32, bf16) and FLOPs per photograph of each network."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(options.threads)
    peaks = {"fp32": matmul_gflops(torch.float32, options.matmul_size, options.repeats),
             "bf16": matmul_gflops(torch.bfloat16, options.matmul_size, options.repeats)}
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
            return torch.sigmoid(torch.as_tensor(network(batch)).float())  # exported networks give numpy

    single = x[:1]
    output = run(single)
    np.save(work / f"{task}-{mode}.npy", output.numpy())
    seconds = median_seconds(lambda: run(single), options.repeats, options.warmup)
    row: dict[str, Any] = {"task": task, "mode": mode, "precision": precision_of(mode, runtime),
                           "optimisations": ", ".join(getattr(network, "optimisations", [])) or "-",
                           "setup_s": setup, "seconds_per_photo": seconds, "batch": 1, "photos_per_second": 1 / seconds}
    if mode != "baseline" and options.batch > 1:
        batched = median_seconds(lambda: run(x), max(1, options.repeats // 2), 1)
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
        paired = interleaved_seconds({"baseline": run_baseline, mode: lambda: run(single)}, options.repeats)
        row["paired_seconds"] = paired
        row["paired_speedup"] = paired["baseline"] / paired[mode]
    return row


def job_pipeline(options: BenchOptions, name: str, counts: dict[str, int], mode: str, work: Path) -> dict[str, Any]:
    """The whole predictor (preprocessing to post-processed outputs) on synthetic photographs."""
    from funduskit.inference.predictor import Predictor

    runtime = make_runtime(mode, options.threads, options.precision)
    start = time.perf_counter()
    predictor = Predictor(build_ensembles(options, counts, mode, runtime, work), runtime)
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
    seconds = median_seconds(lambda: predictor.predict([photos[next(turn) % 2]]), options.repeats, options.warmup - 1)
    row: dict[str, Any] = {"pipeline": name, "mode": mode, "members": dict(counts), "setup_s": setup,
                           "precision": precision_of(mode, runtime), "seconds_per_photo": seconds, "batch": 1,
                           "photos_per_second": 1 / seconds}
    row["peak_rss_mb_batch_1"] = peak_rss_mb()
    if mode != "baseline" and options.batch > 1:
        batch = [photos[i % 2] for i in range(options.batch)]
        batched = median_seconds(lambda: predictor.predict(batch), max(1, options.repeats // 2), 0)
        row.update(batch=options.batch, photos_per_second=options.batch / batched)
    row["peak_rss_mb"] = peak_rss_mb()
    if mode != "baseline" and counts == SINGLE_MODEL:  # the baseline beside it, in turns (see job_network)
        baseline_runtime = make_runtime("baseline", options.threads)
        baseline = Predictor(build_ensembles(options, counts, "baseline", baseline_runtime, work), baseline_runtime)
        baseline.predict([photos[0]])
        turns = {"baseline": iter(range(10**9)), mode: iter(range(10**9))}
        paired = interleaved_seconds({
            "baseline": lambda: baseline.predict([photos[next(turns["baseline"]) % 2]]),
            mode: lambda: predictor.predict([photos[next(turns[mode]) % 2]]),
        }, options.repeats)
        row["paired_seconds"] = paired
        row["paired_speedup"] = paired["baseline"] / paired[mode]
    return row


def job_fast_ensemble(options: BenchOptions, mode: str) -> dict[str, Any]:
    """The fast ensemble (``predict --ensemble fast``) of the starter set, trained ``real``-preset
    networks, on an exported mode: the whole predictor on ``skimage.data.retina()`` (a real
    photograph, so that stage 1 finds a disc and the crop networks run) at the two camera sizes."""
    import cv2
    from skimage.data import retina

    from funduskit.inference.pipeline import PredictEngine, PredictOptions

    engine = PredictEngine(None, PredictOptions(backend=mode, ensemble="fast", device="cpu", precision="fp32",
                                                threads=options.threads))
    start = time.perf_counter()
    predictor = engine.load()
    setup = time.perf_counter() - start
    scale = options.size_scale if options.preset == "tiny" else 1.0
    photos = [cv2.resize(retina(), (max(64, round(w * scale)), max(64, round(h * scale))), interpolation=cv2.INTER_AREA)
              for h, w in CAMERA_SIZES]
    first = predictor.predict([photos[0]])[0]
    turn = iter(range(10**9))
    seconds = median_seconds(lambda: predictor.predict([photos[next(turn) % 2]]), options.repeats, options.warmup - 1)
    members = {task: len(items) for task, items in predictor.ensembles.items()}
    return {"pipeline": "fast ensemble", "mode": mode, "members": members, "setup_s": setup, "precision": "fp32",
            "seconds_per_photo": seconds, "batch": 1, "photos_per_second": 1 / seconds,
            "disc_found": bool((first.mask < 255).any()), "peak_rss_mb_batch_1": peak_rss_mb(),
            "peak_rss_mb": peak_rss_mb(), "networks": "the starter set (docs/starter-models.md)"}


def job_stream(options: BenchOptions, counts: dict[str, int], mode: str, work: Path) -> dict[str, Any]:
    """Peak resident memory after the first ``photos[0]`` and after all ``photos[1]`` photographs
    streamed (made one batch at a time) through the predictor."""
    from funduskit.inference.predictor import Predictor

    runtime = make_runtime(mode, options.threads, options.precision)
    if mode == "onnx":  # as `funduskit predict --backend onnx` sets the process's allocator
        from funduskit.runtime.memory import return_freed_buffers_to_system

        return_freed_buffers_to_system()
    predictor = Predictor(build_ensembles(options, counts, mode, runtime, work), runtime)
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
    payload = json.dumps({"kind": kind, "options": options_to_dict(options), "work": str(work), "arguments": arguments})
    environment = {**os.environ, "OMP_NUM_THREADS": str(options.threads), "HF_HUB_OFFLINE": "1",
                   "PYTHONWARNINGS": "ignore"}
    completed = subprocess.run([sys.executable, "-m", "funduskit.tools.bench.jobs", "--job", payload],
                               capture_output=True, text=True, env=environment, check=False)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    error = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"{kind} {arguments} failed (exit {completed.returncode}): {error}"}


_JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "network": lambda options, work, **a: job_network(options, a["task"], a["mode"], work),
    "pipeline": lambda options, work, **a: job_pipeline(options, a["name"], a["counts"], a["mode"], work),
    "fast": lambda options, work, **a: job_fast_ensemble(options, a["mode"]),
    "stream": lambda options, work, **a: job_stream(options, a["counts"], a["mode"], work),
    "command": lambda options, work, **a: job_command(options, a["counts"], a["photos"], work),
}


def options_to_dict(options: BenchOptions) -> dict[str, Any]:
    data = asdict(options)
    data["photos"], data["modes"] = list(options.photos), list(options.modes)
    return data


def options_from_dict(data: dict[str, Any]) -> BenchOptions:
    data = dict(data)
    data["photos"], data["modes"] = tuple(data["photos"]), tuple(data["modes"])
    return BenchOptions(**data)


def _child(payload: str) -> int:
    """Entry of a job process: run it, print its result on one marked line."""
    import warnings

    warnings.filterwarnings("ignore")
    job = json.loads(payload)
    options = options_from_dict(job["options"])
    options.isolate = False
    result = run_job(job["kind"], options, Path(job["work"]), **job["arguments"])
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["--job"] or len(sys.argv) != 3:
        sys.exit("usage: python -m funduskit.tools.bench.jobs --job PAYLOAD (a job of funduskit bench)")
    sys.exit(_child(sys.argv[2]))
