"""The training loop, the same for every task: :func:`fit` trains one fold into a run directory.

The run directory's files are listed in :mod:`funduskit.runs.layout`.

:func:`fit` with ``resume=True`` continues from ``last.pt`` and gives the result an uninterrupted
run would have given: the epoch order and every augmentation are seeded from
``(seed, epoch, index)``, and the checkpoint restores networks, optimizers, schedule and the
global random generators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import TextColumn
from torch.utils.data import DataLoader

from funduskit.core.config import (
    TrainConfig,
    load_config,
    save_config,
)
from funduskit.core.errors import FunduskitError
from funduskit.core.progress import make_progress
from funduskit.data.sample import Sample
from funduskit.runs import checkpoint as ckpt
from funduskit.runs.layout import (
    AUGMENTATION_FILE,
    BEST,
    CONFIG_FILE,
    CURVES_FILE,
    LAST,
    METRICS_FILE,
    SPLIT_FILE,
)
from funduskit.runs.networks import build_model
from funduskit.runtime.device import Runtime, resolve_runtime
from funduskit.training.builders import build_optimizer, build_scheduler
from funduskit.training.data import (
    AugmentedDataset,
    CachedItem,
    EpochBatchSampler,
    single_threaded_opencv,
    worker_init,
)
from funduskit.training.distributed import (
    DistributedContext,
    distributed_context,
    process_device,
    unwrap,
    wrap_model,
)
from funduskit.training.history import plot_curves, write_metrics_csv
from funduskit.training.items import build_items, usable_samples
from funduskit.training.losses import build_loss
from funduskit.training.splits import Split, make_split, read_split, write_split
from funduskit.training.tasks import Parts, Task, get_task
from funduskit.training.validation import validate


@dataclass
class TrainResult:
    """What :func:`fit` returns."""

    run_dir: Path
    metric: str
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (network initialisation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _loader(dataset: AugmentedDataset, sampler: EpochBatchSampler, config: TrainConfig, seed: int) -> DataLoader:
    workers = config.runtime.num_workers
    options: dict[str, Any] = {}
    if workers > 0:
        options = {"persistent_workers": config.runtime.persistent_workers, "worker_init_fn": worker_init,
                   "prefetch_factor": 2}
        if "fork" in torch.multiprocessing.get_all_start_methods():
            options["multiprocessing_context"] = "fork"  # workers share the image cache, no pickling
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed), **options)


def _improved(metric: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    if math.isnan(metric):
        return False
    if math.isnan(best):
        return True
    return metric > best if mode == "max" else metric < best


def _average(records: list[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(key for record in records for key in record)  # first-seen order, in every process
    return {key: float(np.mean([record[key] for record in records if key in record])) for key in keys}


def build_parts(task: Task, config: TrainConfig, runtime: Runtime) -> Parts:
    """Networks (on the device), optimizers and loss of a run; checks the input size fits every network."""
    models = {role: runtime.prepare(build_model(config, role)) for role in task.model_names(config)}
    sizes = {"data.input_size": config.data.input_size}
    if config.data.patch_size is not None:
        sizes["data.patch_size"] = config.data.patch_size
        if not 0 < config.data.patch_size <= config.data.input_size:
            raise FunduskitError(f"data.patch_size {config.data.patch_size} must lie between 1 and "
                                 f"data.input_size {config.data.input_size}")
    for role, model in models.items():
        multiple = getattr(model, "input_multiple", 1)
        for field_name, size in sizes.items():
            if size % multiple:
                raise FunduskitError(
                    f"{field_name} {size} is not a multiple of {multiple}, which the {role} "
                    f"({type(model).__name__}) needs; use {max(multiple, size // multiple * multiple)} "
                    f"or {-(-size // multiple) * multiple}"
                )
    optimizers = {"model": build_optimizer(list(models["model"].parameters()), config.optimizer)}
    if "discriminator" in models:
        optimizers["discriminator"] = build_optimizer(list(models["discriminator"].parameters()),
                                                      config.discriminator_optimizer or config.optimizer)
    loss = build_loss(config.loss.name, **config.loss.kwargs)
    extra = {"output_reduction": getattr(models["model"], "output_reduction", 1)}
    return Parts(models=models, optimizers=optimizers, loss=loss, runtime=runtime, config=config, extra=extra)


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if resume:
        if not (run_dir / LAST).is_file():
            raise FunduskitError(f"{run_dir} holds no {LAST} to resume from")
        return
    if (run_dir / LAST).exists():
        raise FunduskitError(
            f"{run_dir} already holds a training run; resume it (resume {run_dir}) or train into another run directory"
        )


def _split_samples(task: Task, config: TrainConfig, samples: Sequence[Sample], run_dir: Path, resume: bool,
                   console: Console) -> tuple[Split, list[Sample], list[Sample]]:
    """The fold's split (read back when resuming) and its training and validation samples."""
    usable = usable_samples(task, samples)
    if len(usable) < len(samples):
        console.print(f"[yellow]{len(samples) - len(usable)} image(s) without {task.needs} are left out")
    if resume:
        split = read_split(run_dir / SPLIT_FILE)
    else:
        split = make_split(usable, name=config.data.split, n_folds=config.data.n_folds, fold=config.data.fold,
                           seed=config.seed)
    train_samples, validation_samples = split.select(usable, "train"), split.select(usable, "validation")
    if not train_samples or not validation_samples:
        raise FunduskitError(f"fold {split.fold} leaves {len(train_samples)} training and "
                             f"{len(validation_samples)} validation image(s); both must be non-empty")
    return split, train_samples, validation_samples


@dataclass
class _Loaders:
    train: DataLoader
    train_sampler: EpochBatchSampler
    validation: DataLoader | None  # None: this process's share of the validation set is empty
    validation_items: list[CachedItem]
    augmentation: Any

    def close(self) -> None:
        """Stop the persistent worker processes now. Left to the garbage collector, a loader's
        clean-up can run inside a worker forked later (the next model of ``funduskit demo``),
        where it fails with "can only test a child process"."""
        for loader in (self.train, self.validation):
            if loader is None:
                continue
            iterator = getattr(loader, "_iterator", None)  # torch keeps the persistent workers' iterator here
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()
            loader._iterator = None


def _make_loaders(task: Task, config: TrainConfig, parts: Parts, train_samples: list[Sample],
                  validation_samples: list[Sample], show_progress: bool,
                  context: DistributedContext = DistributedContext()) -> _Loaders:
    """Cache both sets and wrap them in DataLoaders (training: augmented, shuffled per epoch; in a
    multi-process run each process takes its share of every batch and of the validation set)."""
    from funduskit.transforms.augment import build_augmentation

    size = config.data.input_size
    augmentation = (build_augmentation(task.name, size, strength=config.data.augmentation, seed=config.seed)
                    if config.data.augmentation != "none" else None)
    threads = max(1, parts.runtime.threads)
    train_items = build_items(task, config, train_samples, threads=threads, show_progress=show_progress,
                              description=f"Caching {len(train_samples)} training images")
    validation_items = build_items(task, config, validation_samples, threads=threads, show_progress=show_progress,
                                   description=f"Caching {len(validation_samples)} validation images")

    def to_tensors(item: CachedItem, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
        return task.to_tensors(item, arrays, parts.extra)

    train_set = AugmentedDataset(train_items, preprocessing=config.data.preprocessing, to_tensors=to_tensors,
                                 augmentation=augmentation, seed=config.seed, patch_size=config.data.patch_size,
                                 repeats=config.data.patches_per_image if config.data.patch_size else 1)
    own_validation = [validation_items[index] for index in context.shard(len(validation_items))]
    validation_set = AugmentedDataset(own_validation, preprocessing=config.data.preprocessing,
                                      to_tensors=to_tensors, augmentation=None, seed=config.seed)
    # A last batch of one image would break BatchNorm in training mode: drop it then.
    train_sampler = EpochBatchSampler(len(train_set), config.batch_size, seed=config.seed, shuffle=True,
                                      min_last=2, rank=context.rank, world_size=context.world_size)
    validation = None
    if own_validation:
        validation_sampler = EpochBatchSampler(len(validation_set), config.validation_batch_size or config.batch_size,
                                               seed=config.seed, shuffle=False)
        validation = _loader(validation_set, validation_sampler, config, config.seed + 1)
    return _Loaders(train=_loader(train_set, train_sampler, config, config.seed), train_sampler=train_sampler,
                    validation=validation, validation_items=validation_items, augmentation=augmentation)


@dataclass
class _RunState:
    """Where a run stands: the history so far and the best validation metric."""

    history: list[dict[str, float]] = field(default_factory=list)
    best: float | None = None
    best_epoch: int = -1
    next_epoch: int = 0


def _restore(run_dir: Path, parts: Parts, schedule: Any, context: DistributedContext) -> _RunState:
    """Load ``last.pt`` into the networks, optimizers, schedule and global generators (in a
    multi-process run, this process's own generators when the run had as many processes)."""
    state = ckpt.load_checkpoint(run_dir / LAST, map_location=parts.runtime.device)
    for role, model in parts.models.items():
        unwrap(model).load_state_dict(state["models"][role])
    for role, optimizer in parts.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][role])
    schedule.load_state_dict(state["scheduler"])
    per_process = state.get("rng_per_process") or []
    ckpt.restore_rng_state(per_process[context.rank] if len(per_process) == context.world_size else state["rng"])
    return _RunState(history=[dict(record) for record in state["history"]], best=state["best_metric"],
                     best_epoch=state["best_epoch"], next_epoch=state["epoch"] + 1)


def _train_epoch(task: Task, parts: Parts, loaders: _Loaders, epoch: int, progress: Any, bar: Any,
                 context: DistributedContext = DistributedContext()) -> dict[str, float]:
    """One pass over the training set and one validation; the epoch's record (losses averaged
    over the processes of a multi-process run, the validation over all their shares)."""
    loaders.train_sampler.set_epoch(epoch)
    for model in parts.models.values():
        model.train()
    started = time.perf_counter()
    steps = []
    for batch in loaders.train:
        steps.append(task.train_step(parts, batch))
        progress.update(bar, advance=1, status=f"loss {steps[-1]['loss']:.4f}")
    record: dict[str, float] = {"epoch": epoch + 1, "lr": float(parts.optimizers["model"].param_groups[0]["lr"])}
    record.update({f"train_{key}": value for key, value in context.mean(_average(steps)).items()})
    record["train_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    plain = dataclasses.replace(parts, models={role: unwrap(model) for role, model in parts.models.items()})
    for model in plain.models.values():
        context.share_buffers(model)
    record.update(validate(task, plain, loaders.validation, loaders.validation_items, context))
    record["val_seconds"] = time.perf_counter() - started
    return record


def _save_epoch(run_dir: Path, task: Task, parts: Parts, schedule: Any, run: _RunState, epoch: int,
                is_best: bool, context: DistributedContext = DistributedContext()) -> None:
    """``last.pt`` (and ``best.pt``), ``metrics.csv`` and ``curves.png`` after an epoch; in a
    multi-process run rank 0 writes them, with every process's random generators, and the
    others wait until it has."""
    rng_per_process = context.gather(ckpt.capture_rng_state())
    if not context.is_main:
        context.barrier()
        return
    state = {
        "task": task.name,
        "epoch": epoch,
        "models": {role: unwrap(model).state_dict() for role, model in parts.models.items()},
        "optimizers": {role: optimizer.state_dict() for role, optimizer in parts.optimizers.items()},
        "scheduler": schedule.state_dict(),
        "best_metric": run.best,
        "best_epoch": run.best_epoch,
        "metric": task.metric,
        "history": run.history,
        "config": parts.config.to_dict(),
        "rng": rng_per_process[0],
        **({"rng_per_process": rng_per_process} if context.enabled else {}),
    }
    # last.pt is written last: it is what a resumed run starts from, so an interruption anywhere
    # before it (even inside the best.pt write) makes the resumed run redo this whole epoch.
    if is_best:
        ckpt.save_checkpoint(state, run_dir / BEST)
    write_metrics_csv(run.history, run_dir / METRICS_FILE)
    plot_curves(run.history, run_dir / CURVES_FILE, metric=task.metric, title=f"{task.name} — {run_dir.name}")
    ckpt.save_checkpoint(state, run_dir / LAST)
    context.barrier()


def _starting_weights(config: TrainConfig) -> str:
    init = config.init
    given = [("init.pretrained", init.pretrained), ("init.encoder_weights", init.encoder_weights),
             ("init.checkpoint", init.checkpoint), ("init.backbone_checkpoint", init.backbone_checkpoint)]
    used = [name for name, value in given if value]
    if not used:
        return ("Starting from random weights (no init.pretrained, init.encoder_weights, init.checkpoint or "
                "init.backbone_checkpoint).")
    return f"Starting weights from {', '.join(used)}."


def fit(config: TrainConfig, samples: Sequence[Sample], run_dir: str | Path, *, resume: bool = False,
        show_progress: bool = True, console: Console | None = None) -> TrainResult:
    """Train ``config.task`` on one cross-validation fold of ``samples`` into ``run_dir``.

    Args:
        config: the resolved configuration; with ``resume`` it must be the run's own (see
            :func:`resume_config`), only ``epochs`` may be larger.
        samples: the data set; samples without the task's labels are left out.
        run_dir: the run directory (created).
        resume: continue from ``run_dir/last.pt``.
        show_progress: rich progress bars and messages.
        console: where messages go (default: standard error).

    Returns:
        :class:`TrainResult` with the best validation metric and the per-epoch history.

    Under ``torchrun`` every process calls this with the same arguments and they train together
    (:mod:`funduskit.training.distributed`); rank 0 writes the run directory.
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    task = get_task(config.task)
    runtime = resolve_runtime(config.runtime, training=True)
    context = distributed_context(runtime.device_type)
    runtime = dataclasses.replace(runtime, device=process_device(torch.device(runtime.device), context))
    show_progress = show_progress and context.is_main
    console = console or Console(stderr=True, quiet=not show_progress)
    seed_everything(config.seed)
    split, train_samples, validation_samples = _split_samples(task, config, samples, run_dir, resume, console)
    if len(train_samples) < context.world_size:
        raise FunduskitError(f"{len(train_samples)} training image(s) cannot be shared by {context.world_size} processes")
    parts = build_parts(task, config, runtime)
    schedule = build_scheduler(parts.optimizers["model"], config, task.mode)
    console.print(f"[dim]{_starting_weights(config)}")
    loaders = _make_loaders(task, config, parts, train_samples, validation_samples, show_progress, context)

    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        run = _restore(run_dir, parts, schedule, context)
        console.print(f"Resuming {run_dir} at epoch {run.next_epoch + 1} of {config.epochs}")
    else:
        run = _RunState()
        if context.is_main:
            write_split(split, run_dir / SPLIT_FILE)
            if loaders.augmentation is not None:
                from funduskit.transforms.augment import save_augmentation

                save_augmentation(loaders.augmentation, run_dir / AUGMENTATION_FILE)
            else:
                (run_dir / AUGMENTATION_FILE).write_text("# no augmentation (data.augmentation: none)\n")
    if context.is_main:
        save_config(config, run_dir / CONFIG_FILE)
    parts.models = {role: wrap_model(model, context) for role, model in parts.models.items()}
    size = config.data.input_size
    processes = f", {context.world_size} processes ({context.backend})" if context.enabled else ""
    console.print(
        f"[bold]{task.name}[/]: {len(train_samples)} training / {len(validation_samples)} validation images, "
        f"fold {split.fold} of {split.n_folds}, {size}x{size}, batch {config.batch_size}, {runtime.describe()}"
        f"{processes}"
    )

    progress = make_progress(TextColumn("{task.fields[status]}"))
    progress.disable = not show_progress
    with progress, single_threaded_opencv(), contextlib.closing(loaders):
        for epoch in range(run.next_epoch, config.epochs):
            bar = progress.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(loaders.train_sampler), status="")
            record = _train_epoch(task, parts, loaders, epoch, progress, bar, context)
            metric = record[task.metric]
            schedule.step(metric)
            run.history.append(record)
            is_best = _improved(metric, run.best, task.mode)
            if is_best:
                run.best, run.best_epoch = metric, epoch + 1
            _save_epoch(run_dir, task, parts, schedule, run, epoch, is_best, context)
            progress.update(bar, status=f"loss {record['train_loss']:.4f}  {task.metric} {metric:.4f}"
                                        + ("  best" if is_best else ""))
    return TrainResult(run_dir=run_dir, metric=task.metric,
                       best_metric=float("nan") if run.best is None else run.best,
                       best_epoch=run.best_epoch, history=run.history)


def resume_config(run_dir: str | Path, *, epochs: int | None = None) -> TrainConfig:
    """The configuration of an existing run (``config.yaml``), optionally with more epochs."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    if epochs is not None:
        config.epochs = epochs
    return config
