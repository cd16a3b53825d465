"""``funduskit predict --engine ray``: the same prediction as the local engine, spread over Ray workers.

The driver (the process that runs the command) lists the inputs and decides what is left to do
exactly as :class:`~funduskit.inference.pipeline.PredictEngine` does; a Ray Data pipeline then
streams the photographs' paths to a pool of actors, each holding one copy of every network
(:class:`PhotoWorker`: loaded once per worker, never per photograph), which read, predict and
write each photograph's files and record into the output folder. The driver builds the tables,
the REFUGE2 submission's CSV files and the report from the records at the end, as the local
engine does. So the output folder is the local engine's, file for file, and a run restarted with
either engine skips what either has recorded.

Ray Data streams: a worker holds one batch of photographs at a time and the driver receives only
each photograph's name and whether it was read, so memory stays flat in the number of
photographs. On a cluster (``address``), the output folder and the inputs must be on a file
system every node sees at the same path (``docs/scale.md``).

Ray is an optional extra (``pip install 'funduskit[ray]'``); without it the engine says how to
install it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from funduskit.core.errors import FunduskitError
from funduskit.inference.pipeline import (
    PredictEngine,
    PredictOptions,
    PredictSummary,
    progress_counter,
)
from funduskit.runtime.memory import peak_rss_mb

#: What the command says when Ray is missing.
RAY_MISSING = "the Ray engine needs Ray, an optional extra: pip install 'funduskit[ray]' (or pip install 'ray[data]')"
#: Photographs in one Ray Data batch (what a worker is handed at a time).
RAY_BATCH = 4


@dataclass
class RayPlacement:
    """Where the Ray engine runs.

    Attributes:
        address: a running cluster's address (``"auto"``: the one this machine belongs to, or
            ``HOST:PORT``); None starts a local Ray instance for the run and shuts it down after.
        workers: actors, each with one copy of the networks.
        cpus_per_worker: CPU cores each actor reserves, and its torch threads; 0: this machine's
            cores shared out between the workers (at least one each).
        gpus_per_worker: GPUs each actor reserves (0 on CPU machines).
    """

    address: str | None = None
    workers: int = 2
    cpus_per_worker: int = 0
    gpus_per_worker: float = 0.0


def import_ray() -> Any:
    """The ``ray`` module, or a FunduskitError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the part used)
    except ImportError as error:
        raise FunduskitError(f"{RAY_MISSING} ({error})") from error
    return ray


class PhotoWorker:
    """A Ray Data actor: one :class:`PredictEngine` with its networks, loaded in the constructor.

    Called with a batch ``{"path": (B,) str array}``, it predicts those photographs into
    ``out_dir`` and returns ``{"path": (B,), "failed": (B,) bool, "pid": (B,), "peak_mb": (B,),
    "runtime": (B,) str}``: which could not be read, and this worker's process id, peak resident
    memory so far and runtime in words.
    """

    def __init__(self, models_dir: str | None, options: PredictOptions, out_dir: str):
        self.engine = PredictEngine(models_dir, options)
        self.engine.load()
        self.out_dir = Path(out_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [Path(str(path)) for path in batch["path"]]
        self.engine.predict_files(paths, self.out_dir)
        failed = [_failed(self.out_dir, path) for path in paths]
        return {"path": batch["path"], "failed": np.asarray(failed, dtype=bool),
                "pid": np.full(len(paths), os.getpid()), "peak_mb": np.full(len(paths), peak_rss_mb()),
                "runtime": np.full(len(paths), self.engine.runtime_text)}


def _failed(out_dir: Path, path: Path) -> bool:
    from funduskit.inference.results import load_result

    result = load_result(out_dir, path.name)
    return result is None or not result.ok


@dataclass
class CohortSummary:
    """A Ray run's :class:`PredictSummary` and each worker's peak memory (MB, by process id)."""

    summary: PredictSummary
    worker_peak_mb: dict[int, float]


def predict_cohort(
    inputs: Sequence[str | Path],
    models_dir: str | Path | None,
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    placement: RayPlacement = RayPlacement(),
    *,
    progress: bool = True,
) -> CohortSummary:
    """:func:`funduskit.inference.pipeline.predict_photos` on Ray workers (see the module doc).

    Args:
        inputs: image files and/or folders of images.
        models_dir: run directories or a ``models.yaml`` manifest; None: the starter models alone.
        out_dir: output folder (created).
        options: :class:`PredictOptions`; ``threads`` 0 gives each worker its share of the cores.
        placement: :class:`RayPlacement`.
        progress: show a progress bar.
    Raises:
        FunduskitError: Ray is not installed, an option is invalid, a task has no model, an
            input path is missing.
    """
    if placement.workers < 1:
        raise FunduskitError(f"--workers must be at least 1, got {placement.workers}")
    ray = import_ray()
    driver = PredictEngine(models_dir, options)  # the models and options, checked; no networks loaded
    plan = driver.plan(inputs, out_dir)
    peaks: dict[int, float] = {}
    failed = 0
    runtime_text = driver.runtime_text
    if plan.todo:
        started_here = not ray.is_initialized()
        if started_here:
            _start_ray(ray, placement.address)
        try:
            cpus = placement.cpus_per_worker or max(1, int(ray.cluster_resources().get("CPU", 1)) // placement.workers)
            worker_options = replace(options, threads=options.threads or cpus)
            logging.getLogger("ray.data").setLevel(logging.ERROR)  # its own bars' notices; funduskit has a bar
            ray.data.DataContext.get_current().enable_progress_bars = False
            rows = ray.data.from_items([{"path": str(path)} for path in plan.todo],
                                       override_num_blocks=max(1, min(len(plan.todo), 4 * placement.workers)))
            predicted = rows.map_batches(
                PhotoWorker,
                fn_constructor_kwargs={"models_dir": None if models_dir is None else str(models_dir),
                                       "options": worker_options, "out_dir": str(plan.out_dir)},
                batch_size=RAY_BATCH, compute=ray.data.ActorPoolStrategy(size=placement.workers), num_cpus=cpus,
                num_gpus=placement.gpus_per_worker or None,
            )
            worker_runtimes: set[str] = set()
            with progress_counter(progress, len(plan.files), plan.skipped) as advance:
                for batch in predicted.iter_batches(batch_size=None, batch_format="numpy"):
                    worker_runtimes.update(str(text) for text in batch["runtime"])
                    failed += int(batch["failed"].sum())
                    for pid, peak in zip(batch["pid"].tolist(), batch["peak_mb"].tolist()):
                        peaks[int(pid)] = max(peaks.get(int(pid), 0.0), float(peak))
                    advance(len(batch["path"]))
            runtime_text = f"Ray, {placement.workers} worker(s): {' / '.join(sorted(worker_runtimes))}"
        finally:
            if started_here:
                ray.shutdown()
    return CohortSummary(summary=driver.finish(plan, failed, runtime_text), worker_peak_mb=peaks)


def _start_ray(ray: Any, address: str | None) -> None:
    """Join the cluster at ``address``, or start a local instance (this machine's cores, no
    dashboard, Ray's own logs kept out of the console)."""
    settings: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        settings["num_cpus"] = os.cpu_count() or 1
        settings["object_store_memory"] = 256 * 2**20  # paths and small records only pass through it
    try:
        ray.init(address=address, **settings)
    except ConnectionError as error:
        raise FunduskitError(f"no Ray cluster at {address!r} ({error}); start one with `ray start --head`, "
                             "or leave out --address to run on this machine") from error
