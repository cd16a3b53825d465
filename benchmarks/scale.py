"""Cohort prediction on Ray and multi-process training, measured on this machine.

Prediction: the local engine and ``--engine ray`` with 1 and 2 workers, each in a fresh process,
over a small and a larger folder of the same photographs (synthetic whole photographs at half
camera size and ``skimage.data.retina()``), with the starter models unless ``--models``. The
marginal rate, (large - small photographs) / (large - small seconds), leaves out what a run pays
once (Ray's start, loading the networks); the peak memory of each worker (the local engine: the
process) at both sizes shows whether it stays flat.

Training: ``funduskit train disc`` (cpu preset, synthetic photographs) in 1 and in 2 processes
with the same global batch; the step time is the second epoch's training seconds over its steps.

Usage::

    python benchmarks/scale.py                     # 8 and 32 photographs; 32 training images
    python benchmarks/scale.py --small 4 --large 16 --train-images 16 --epochs 2

Prints markdown tables (docs/scale.md) with the CPU flags.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_flags

ENGINES = (("local", 0), ("ray", 1), ("ray", 2))


def make_photos(folder: Path, count: int, pool_folder: Path) -> Path:
    """``folder`` holding ``count`` photographs: copies of the pool's (symlinks, distinct names)."""
    pool = sorted(pool_folder.iterdir())
    folder.mkdir(parents=True)
    for index in range(count):
        source = pool[index % len(pool)]
        (folder / f"photo{index:04d}{source.suffix}").symlink_to(source.resolve())
    return folder


def make_pool(folder: Path, count: int) -> Path:
    import cv2
    from skimage.data import retina

    from funduskit.synthetic import generate_dataset

    generate_dataset(folder / "synthetic", max(1, count - 1), 7, scale=0.5)
    pool = folder / "pool"
    pool.mkdir()
    cv2.imwrite(str(pool / "retina.jpg"), cv2.cvtColor(retina(), cv2.COLOR_RGB2BGR))
    for path in sorted((folder / "synthetic" / "Images").iterdir()):
        (pool / path.name).symlink_to(path.resolve())
    return pool


def child(engine: str, workers: int, photos: Path, out: Path, models: str | None) -> dict[str, object]:
    """One prediction in this process; its wall time and peak memories."""
    from funduskit.inference.cohort import RayPlacement, predict_cohort
    from funduskit.inference.pipeline import PredictOptions, predict_photos
    from funduskit.runtime.memory import peak_rss_mb

    started = time.perf_counter()
    if engine == "local":
        summary = predict_photos([photos], models, out, PredictOptions(), progress=False)
        peaks = {os.getpid(): peak_rss_mb()}
    else:
        result = predict_cohort([photos], models, out, PredictOptions(), RayPlacement(workers=workers), progress=False)
        summary, peaks = result.summary, result.worker_peak_mb
    return {"seconds": time.perf_counter() - started, "predicted": summary.predicted, "failed": summary.failed,
            "worker_peak_mb": max(peaks.values()), "driver_peak_mb": peak_rss_mb(), "runtime": summary.runtime}


def run_child(engine: str, workers: int, photos: Path, out: Path, models: Path | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", engine, str(workers), str(photos), str(out),
               str(models) if models else ""]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prediction_table(work: Path, small: int, large: int, models: Path | None) -> list[str]:
    pool = make_pool(work, 8)
    rows = ["| engine | workers | photos | seconds | photos/s (marginal) | peak MB per worker, small -> large "
            "| driver peak MB | runtime |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for engine, workers in ENGINES:
        name = f"{engine}{workers}"
        results = {}
        for count in (small, large):
            photos = make_photos(work / f"photos-{name}-{count}", count, pool)
            results[count] = run_child(engine, workers, photos, work / f"out-{name}-{count}", models)
            assert results[count]["predicted"] == count and results[count]["failed"] == 0, results[count]
        a, b = results[small], results[large]
        marginal = (large - small) / (float(b["seconds"]) - float(a["seconds"]))
        rows.append(f"| {engine} | {workers or '-'} | {small} / {large} | {a['seconds']:.1f} / {b['seconds']:.1f} "
                    f"| {marginal:.2f} | {a['worker_peak_mb']:.0f} -> {b['worker_peak_mb']:.0f} "
                    f"| {b['driver_peak_mb']:.0f} | {b['runtime']} |")
    return rows


def training_table(work: Path, images: int, epochs: int) -> list[str]:
    from funduskit.synthetic import generate_dataset

    data = work / "train-data"
    generate_dataset(data, images, 3, scale=0.25)
    rows = ["| processes | global batch | steps / epoch | step s (epoch 2) | epoch s |", "| --- | --- | --- | --- | --- |"]
    for nproc in (1, 2):
        run = work / f"train-{nproc}"
        command = [sys.executable, "-m", "funduskit", "train", "disc", "--data", str(data), "--epochs", str(epochs),
                   "--batch-size", "8", "--workers", "0", "--out", str(run), "--nproc", str(nproc), "--quiet"]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        with (run / "metrics.csv").open() as handle:
            last = list(csv.DictReader(handle))[-1]
        with (run / "split.csv").open() as handle:
            trained = sum(row["role"] == "train" for row in csv.DictReader(line for line in handle if not line.startswith("#")))
        steps = -(-trained // 8) - (trained % 8 == 1)  # a last batch of one image is dropped
        seconds = float(last["train_seconds"])
        rows.append(f"| {nproc} | 8 | {steps} | {seconds / steps:.2f} | {seconds:.1f} |")
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, workers, photos, out, models = sys.argv[2:7]
        print(json.dumps(child(engine, int(workers), Path(photos), Path(out), models or None)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: the starter models)")
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--large", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prediction = prediction_table(work, args.small, args.large, args.models)
        training = [] if args.skip_training else training_table(work, args.train_images, args.epochs)
    cores = os.cpu_count()
    print(f"Prediction ({'models ' + str(args.models) if args.models else 'starter models'}); "
          f"CPU flags: {cpu_flags()}; {cores} cores\n")
    print("\n".join(prediction))
    if training:
        print(f"\nTraining: disc, cpu preset, 256 px, synthetic; CPU flags: {cpu_flags()}; {cores} cores\n")
        print("\n".join(training))
    print(f"\ncommand: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
