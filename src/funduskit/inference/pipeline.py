"""``funduskit predict``: photographs in, a REFUGE2 submission, result tables, overlays and a report out.

Photographs stream through in batches (the next batch is decoded in a background thread while
the networks work on the current one), so thousands of files never sit in memory together. Each
photograph's outputs are written as soon as it is done, its record (``results/NAME.json``) last;
every file is written atomically. A photograph that cannot be read is recorded with the reason
and the run goes on. Run again with the same arguments, a photograph whose record was made with
the same models and options, from the same unchanged file, is skipped. The tables, the
submission's CSV files and the report are rebuilt from the records at the end.

Output folder::

    OUT/classification_results.csv        REFUGE2 submission (``funduskit evaluate`` reads it)
    OUT/fovea_location_results.csv
    OUT/segmentation/NAME.png              0 = cup, 128 = rim, 255 = background, original size
    OUT/results.csv, OUT/results.json      one row / record per photograph
    OUT/results/NAME.jpg.json              per-photograph records (what is done)
    OUT/overlays/NAME.png                  outlines, fovea and vessels drawn on the photograph
    OUT/vessels/NAME.png                   vessel probability, 8-bit (255 = 1), original size
    OUT/probabilities/NAME_disc.npy, _cup.npy   with ``save_probabilities`` (for ``funduskit tune``)
    OUT/report.html                        the page to open
    OUT/predict.json                       models, thresholds, options and counts of the run
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from funduskit import __version__
from funduskit.core.config import PRECISIONS, RuntimeConfig
from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.files import atomic_write_bytes, atomic_write_text
from funduskit.core.progress import make_progress
from funduskit.core.tasks import SEGMENTATION_TASKS
from funduskit.data.io import (
    PHOTO_SUFFIXES,
    FieldOfView,
    find_fov,
    frame_fov,
    image_format,
    load_image,
)
from funduskit.data.sample import VIEWS, View
from funduskit.data.view import detect_view
from funduskit.inference.fast_ensemble import ENSEMBLES
from funduskit.inference.fovea_check import check_fovea
from funduskit.inference.model_store import (
    STARTER,
    STARTER_DIR,
    ModelSet,
    RunInfo,
    fingerprint,
    load_models,
    require_tasks,
    required_tasks,
)
from funduskit.inference.postprocess import disc_cup_measures, infer_eye_side
from funduskit.inference.predictor import (
    NetworkLoader,
    PhotoPrediction,
    Predictor,
    PreparedInputs,
    load_network,
)
from funduskit.inference.fundus_content import FundusContent
from funduskit.inference.quality import GRADES, QUALITY_VERSION, grade_photograph
from funduskit.inference.report import (
    REPORT_FILE,
    render_overlay,
    write_overlay,
    write_report,
)
from funduskit.inference.results import (
    OVERLAYS_DIR,
    RUN_RECORD,
    VESSELS_DIR,
    ImageResult,
    load_result,
    load_results,
    probability_path,
    save_result,
    write_tables,
)
from funduskit.runtime.device import Runtime, resolve_runtime
from funduskit.runtime.memory import return_freed_buffers_to_system
from funduskit.scoring.metrics import disc_of
from funduskit.scoring.submission import (
    SEGMENTATION_DIR,
    Submission,
    image_stem,
    write_submission,
)

#: Longer side of the saved probability maps (float16) used by ``funduskit tune``.
PROBABILITY_SIDE = 512


@dataclass(frozen=True)
class PredictOptions:
    """How ``funduskit predict`` runs.

    Attributes:
        tta: horizontal-flip test-time augmentation.
        batch_size: photographs per network batch; 0 = :func:`default_batch_size` of the device.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 autocast where the device computes it natively), ``"bf16"``
            or ``"fp32"``.
        channels_last: channels_last memory format (much faster EfficientNets on CPU).
        threads: torch intra-op threads, 0 = torch's default.
        save_probabilities: also write the disc and cup probability maps (``funduskit tune``).
        probability_side: longer side of those maps.
        backend: ``"torch"`` (networks rewritten for inference, :mod:`funduskit.runtime.optimise`),
            ``"onnx"`` (ONNX Runtime on the models of ``funduskit export``), ``"openvino"``
            (OpenVINO's CPU plugin on the same files), or ``"auto"``: each run on the backend of
            its file, exported ones (``model.onnx``, as the starter models) on ONNX Runtime.
        view: ``"whole"`` (whole fundus photographs), ``"disc"`` (crops centred on the optic
            disc) or ``"auto"``: each photograph's own, by its corners
            (:func:`funduskit.data.view.detect_view`).
        starter: let the starter models installed with the package answer the tasks the models
            folder has no model for (all tasks when no folder is given).
        ensemble: ``"full"`` (every member of every task's ensemble, the report's answer) or
            ``"fast"`` (fewer members, :mod:`funduskit.inference.fast_ensemble`; answers differ a little).
        quality: ``"on"``: grade every photograph (:mod:`funduskit.inference.quality`) and give a
            rejected one no answers; ``"off"``: grade it, answer anyway (challenge submissions that
            must answer every photograph).
    """

    tta: bool = False
    batch_size: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    threads: int = 0
    save_probabilities: bool = False
    probability_side: int = PROBABILITY_SIDE
    backend: str = "auto"
    view: str = "auto"
    starter: bool = True
    quality: str = "on"
    ensemble: str = "full"


#: The backends that run exported networks (``model.onnx``), and their names in words.
EXPORT_BACKENDS: dict[str, str] = {"onnx": "ONNX Runtime", "openvino": "OpenVINO"}
#: What runs exported networks under ``--backend auto``. OpenVINO fp32 was 1.45x faster on an AMX
#: CPU with the same answers, but a process that had loaded it crashed when it later forked
#: DataLoader workers: it is opt-in (``--backend openvino``; docs/decisions.md, "OpenVINO").
AUTO_EXPORT_BACKEND = "onnx"
#: What ``PredictOptions.backend`` / ``--backend`` may say.
BACKENDS: tuple[str, ...] = ("auto", "torch", *EXPORT_BACKENDS)
#: What ``PredictOptions.quality`` / ``--quality`` may say.
QUALITY_CHOICES: tuple[str, ...] = ("on", "off")
#: What ``PredictOptions.view`` / ``--view`` may say.
VIEW_CHOICES: tuple[str, ...] = ("auto", *VIEWS)


@dataclass
class PredictSummary:
    """What a ``funduskit predict`` run did."""

    out_dir: Path
    total: int
    predicted: int
    skipped: int
    failed: int
    seconds: float
    runs: dict[str, list[str]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # task -> "starter" or the models folder
    grades: dict[str, int] = field(default_factory=dict)  # quality grade -> photographs
    thresholds: dict[str, object] = field(default_factory=dict)
    runtime: str = ""
    passed_over: list[PassedOver] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out_dir / REPORT_FILE


@dataclass(frozen=True)
class PassedOver:
    """A file given or found that is not predicted, and why (listed in ``predict.json`` and the report)."""

    path: str
    reason: str


@dataclass
class Inputs:
    """What ``funduskit predict`` was given: the photographs to predict and every other file."""

    photos: list[Path]
    passed_over: list[PassedOver] = field(default_factory=list)


def list_inputs(paths: Sequence[str | Path]) -> Inputs:
    """The photographs named by ``paths``: files as given, and every file of a folder that is an
    image by its suffix or, whatever its suffix, by its content (:func:`funduskit.data.io.image_format`).
    Nothing is passed over in silence: a folder's other files (not images, hidden files) and
    photographs whose output name is taken (same file stem) are listed with the reason.

    A folder with no image files of its own but an ``Images`` sub-folder (a REFUGE2 split
    folder) gives that sub-folder's files.

    Raises:
        DataError: a path does not exist, or a folder holds no images.
    """
    files: list[Path] = []
    passed_over: list[PassedOver] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found, others = _folder_files(path)
            if not found and (path / "Images").is_dir():
                found, inside = _folder_files(path / "Images")
                others += inside
            if not found:
                raise DataError(path, "folder holds no images", fix=f"expected files ending in {', '.join(PHOTO_SUFFIXES)}")
            files.extend(found)
            passed_over.extend(others)
        else:
            raise DataError(path, "not found", fix="give image files or folders of images")
    by_stem: dict[str, Path] = {}
    for file in files:
        stem = image_stem(file.name)
        first = by_stem.setdefault(stem, file)
        if first.resolve() != file.resolve():
            passed_over.append(PassedOver(str(file), f"its results would overwrite those of {first} (same name "
                                                       f"{stem!r}); predict it into another --out folder"))
    return Inputs(list(by_stem.values()), passed_over)


def _folder_files(folder: Path) -> tuple[list[Path], list[PassedOver]]:
    """A folder's image files (by suffix, else by content), and its other files with the reason."""
    photos, others = [], []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.is_file():
            continue
        if path.name.startswith("."):
            others.append(PassedOver(str(path), "hidden file"))
        elif path.suffix.lower() in PHOTO_SUFFIXES or image_format(path) is not None:
            photos.append(path)
        else:
            others.append(PassedOver(str(path), f"not an image that funduskit reads ({', '.join(PHOTO_SUFFIXES)}, "
                                                 "judged by content when the suffix is another)"))
    return photos, others


def predict_photos(
    inputs: Sequence[str | Path],
    models_dir: str | Path | None,
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    *,
    progress: bool = True,
) -> PredictSummary:
    """Run every task's ensemble over photographs and write the outputs (see the module doc).

    Args:
        inputs: image files and/or folders of images.
        models_dir: run directories or a ``models.yaml`` manifest (:mod:`funduskit.inference.model_store`);
            None: the starter models alone.
        out_dir: output folder (created).
        options: :class:`PredictOptions`.
        progress: show a progress bar.
    Returns:
        The counts of the run.
    Raises:
        FunduskitError: a task has no model, an input path is missing, names clash.
    """
    return PredictEngine(models_dir, options).predict(inputs, out_dir, progress=progress)


class PredictEngine:
    """The models of a models folder and the options of a prediction, ready to predict folder
    after folder: the networks are loaded once, on first use (or by :meth:`load`), and kept.
    ``funduskit predict`` uses one for one run; ``funduskit serve`` one for every job.

    Args:
        models_dir: run directories or a ``models.yaml`` manifest; None: the starter models alone.
        options: :class:`PredictOptions`.
    Raises:
        FunduskitError: an option is invalid, or a task has no model.
    """

    def __init__(self, models_dir: str | Path | None, options: PredictOptions = PredictOptions()):
        _check_options(options)
        self.options = options
        self.models = load_models(models_dir, starter_dir=STARTER_DIR if options.starter else None,
                                  ensemble=options.ensemble)
        runs, thresholds = self.models.runs, self.models.thresholds
        require_tasks(runs, models_dir if models_dir is not None else STARTER_DIR, required_tasks(runs))
        self.backend = _resolve_backend(options.backend, runs)
        # exported networks alone: torch is not imported (0.5 GB resident; docs/performance.md)
        self.runtime = resolve_runtime(RuntimeConfig(device=options.device, threads=options.threads,
                                                     channels_last=options.channels_last,
                                                     precision=options.precision),
                                       torch_free=self.backend in EXPORT_BACKENDS)
        # bf16 on exported networks only when asked for: OpenVINO bf16 missed the agreement limits on
        # the trained starter networks over real photographs (cup Dice 0.69 worst; docs/performance.md)
        self.export_precision = options.precision if options.precision != "auto" else "fp32"
        self.settings_key = fingerprint(runs, {
            "tta": options.tta, "bf16": self.runtime.bf16, "thresholds": thresholds.as_dict(),
            "save_probabilities": options.save_probabilities, "probability_side": options.probability_side,
            **({"view": options.view} if options.view != "auto" else {}),
            "quality": options.quality,  # (records before the quality gate carry no grade: predicted again)
            "quality_version": QUALITY_VERSION,
            **({"backend": self.backend} if self.backend != "torch" else {}),
            **({"export_precision": self.export_precision} if "openvino" in self.backend else {}),
        })
        self.runtime_text = runtime_text(self.runtime, self.backend, self.export_precision)
        self._predictor: Predictor | None = None
        self._content: FundusContent | None = None

    @property
    def loaded(self) -> bool:
        """True once the networks are loaded."""
        return self._predictor is not None

    def load(self) -> Predictor:
        """The networks of every task, loaded on the first call and kept."""
        if self._predictor is None:
            if self.backend in EXPORT_BACKENDS:  # see funduskit.runtime.memory: not for torch, whose networks it slows
                return_freed_buffers_to_system()
            self._predictor = Predictor.from_runs(self.models.runs, self.runtime, self.models.thresholds,
                                                  tta=self.options.tta,
                                                  loader=_network_loader(self.backend, self.export_precision))
            self._content = load_fundus_content()
        return self._predictor

    def predict(self, inputs: Sequence[str | Path], out_dir: str | Path, *, progress: bool = True) -> PredictSummary:
        """Predict photographs into ``out_dir`` (see the module doc); photographs already done there
        with these models and options are skipped.

        Args:
            inputs: image files and/or folders of images.
            out_dir: output folder (created).
            progress: show a progress bar.
        Raises:
            DataError: an input path is missing, or a folder holds no images.
        """
        plan = self.plan(inputs, out_dir)
        failed = 0
        if plan.todo:
            with progress_counter(progress, len(plan.files), plan.skipped) as advance:
                failed = self.predict_files(plan.todo, plan.out_dir, advance)
        return self.finish(plan, failed)

    def plan(self, inputs: Sequence[str | Path], out_dir: str | Path) -> PredictPlan:
        """What a prediction into ``out_dir`` has to do: the photographs given and those not yet
        done there with these models and options (the output folder is created).

        Raises:
            DataError: an input path is missing, or a folder holds no images.
        """
        started = time.perf_counter()
        given = list_inputs(inputs)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        todo = [file for file in given.photos if not _is_done(out_dir, file, self.settings_key)]
        return PredictPlan(out_dir=out_dir, given=given, todo=todo, started=started)

    def predict_files(self, files: Sequence[Path], out_dir: Path, advance: Callable[[int], None] = lambda n: None) -> int:
        """Predict ``files`` (photographs, not yet done) and write each one's outputs and record
        into ``out_dir``; ``advance(n)`` after each batch of ``n``. Returns how many could not be read."""
        predictor = self.load()
        writer = _Writer(out_dir, self.settings_key, self.options, self._content)
        batch_size = self.options.batch_size or default_batch_size(self.runtime.device)
        failed = 0
        for batch in _prefetched_batches(files, batch_size, predictor.prepare, self.options.view):
            failed += writer.write_batch(batch, predictor)
            advance(len(batch.items))
        return failed

    def finish(self, plan: PredictPlan, failed: int, runtime_text: str | None = None) -> PredictSummary:
        """Build the tables, the submission's CSV files, the report and ``predict.json`` from the
        records in the plan's output folder; the run's summary.

        Args:
            plan: the run's :meth:`plan`.
            failed: photographs of ``plan.todo`` that could not be read.
            runtime_text: where the networks ran, in words (default: this engine's runtime).
        """
        options, models, out_dir, files = self.options, self.models, plan.out_dir, plan.files
        runtime_text = runtime_text or self.runtime_text
        results = load_results(out_dir, [file.name for file in files])
        _write_collected(out_dir, results, models, options, runtime_text, plan.given.passed_over)
        summary = PredictSummary(
            out_dir=out_dir,
            total=len(files),
            predicted=len(plan.todo),
            skipped=plan.skipped,
            failed=failed,
            seconds=time.perf_counter() - plan.started,
            runs={task: [str(run.run_dir) for run in items] for task, items in models.runs.items()},
            origin=models.origin,
            grades={grade: n for grade in GRADES if (n := sum(r.ok and r.quality == grade for r in results))},
            thresholds=models.thresholds.as_dict(),
            runtime=runtime_text,
            passed_over=plan.given.passed_over,
        )
        record = {**asdict(summary), "out_dir": str(out_dir),
                  "models_dir": str(models.models_dir.resolve()) if models.models_dir else None,
                  "options": asdict(options), "settings_key": self.settings_key, "funduskit": __version__,
                  "errors": sum(not r.ok for r in results)}
        atomic_write_text(out_dir / RUN_RECORD, json.dumps(record, indent=1) + "\n")
        return summary


@dataclass
class PredictPlan:
    """What a prediction has to do (:meth:`PredictEngine.plan`)."""

    out_dir: Path
    given: Inputs
    todo: list[Path]
    started: float  # time.perf_counter() at the start

    @property
    def files(self) -> list[Path]:
        """Every photograph given."""
        return self.given.photos

    @property
    def skipped(self) -> int:
        """Photographs already done."""
        return len(self.files) - len(self.todo)


def _check_options(options: PredictOptions) -> None:
    """Raise a FunduskitError naming the first invalid option."""
    if options.batch_size < 0:
        raise FunduskitError(f"--batch-size must be at least 1 (or 0 for the device's default), got {options.batch_size}")
    if options.precision not in PRECISIONS:
        raise FunduskitError(f"precision must be one of {', '.join(PRECISIONS)}, not {options.precision!r}")
    if options.backend not in BACKENDS:
        raise FunduskitError(f"backend must be one of {', '.join(BACKENDS)}, not {options.backend!r}")
    if options.quality not in QUALITY_CHOICES:
        raise FunduskitError(f"quality must be on or off, not {options.quality!r}")
    if options.view not in VIEW_CHOICES:
        raise FunduskitError(f"view must be one of {', '.join(VIEW_CHOICES)}, not {options.view!r}")
    if options.ensemble not in ENSEMBLES:
        raise FunduskitError(f"ensemble must be one of {', '.join(ENSEMBLES)}, not {options.ensemble!r}")


def default_batch_size(device: str) -> int:
    """Photographs per batch when none is asked for: 1 on CPU, where larger batches of the
    paper-size networks were slower per photograph and cost memory (``docs/performance.md``: report
    ensemble 17.6 s at batch 1, 21.4 s at batch 2; the demo's small networks were 10 % faster at
    batch 2); 4 on a GPU, where batching is what keeps it busy."""
    return 4 if str(device).startswith("cuda") else 1


def _resolve_backend(backend: str, runs: dict[str, list[RunInfo]]) -> str:
    """The backend that runs the networks: ``backend`` as asked, or for ``"auto"`` ``"torch"`` when
    no run is exported, :data:`AUTO_EXPORT_BACKEND` when all are, else that backend's name + ``"+torch"``
    (each run on its own file's backend: the starter set's ONNX networks beside a user's checkpoints)."""
    if backend != "auto":
        return backend
    exported = [run.checkpoint.suffix == ".onnx" for items in runs.values() for run in items]
    if not any(exported):
        return "torch"
    chosen = AUTO_EXPORT_BACKEND
    return chosen if all(exported) else f"{chosen}+torch"


def runtime_text(runtime: Runtime, backend: str, export_precision: str = "fp32") -> str:
    """Where and how the networks run, in words (the console, the report, ``predict.json``):
    ``"cpu, bf16 autocast, channels_last, 2 thread(s)"`` for torch; for an export backend its own
    precision (ONNX Runtime runs fp32; OpenVINO ``export_precision``)."""
    exported, _, with_torch = backend.partition("+")
    if exported == "torch":
        return runtime.describe()
    precision = "fp32" if exported == "onnx" else export_precision
    text = f"{runtime.device_type}, {EXPORT_BACKENDS[exported]} {precision}, {runtime.threads} thread(s)"
    return f"{text} + torch ({runtime.describe()})" if with_torch else text


def _network_loader(backend: str, export_precision: str = "fp32") -> NetworkLoader:
    """The predictor's network loader of a backend (``"torch"``, an export backend, or one of
    those + ``"+torch"``: exported runs on it, checkpoints on torch); OpenVINO runs the exported
    networks in ``export_precision``."""
    from funduskit.inference.onnx_backend import load_onnx_network
    from funduskit.inference.openvino_backend import load_openvino_network

    exported, _, with_torch = backend.partition("+")
    if exported == "torch":
        return load_network
    export_loader = {"onnx": load_onnx_network,
                     "openvino": lambda run, runtime: load_openvino_network(
                         run, replace(runtime, precision=export_precision))}[exported]
    if not with_torch:
        return export_loader
    return lambda run, runtime: (export_loader if run.checkpoint.suffix == ".onnx" else load_network)(run, runtime)


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------

@dataclass
class Loaded:
    """A decoded photograph and its field of view, or why it could not be read."""

    file: Path
    image: np.ndarray | None = None
    fov: FieldOfView | None = None
    error: DataError | None = None
    view: View = "whole"


@dataclass
class LoadedBatch:
    """Photographs of one batch, and the network inputs of the readable ones."""

    items: list[Loaded]
    prepared: PreparedInputs

    @property
    def images(self) -> list[np.ndarray]:
        return [item.image for item in self.items if item.image is not None]

    @property
    def views(self) -> list[View]:
        return [item.view for item in self.items if item.image is not None]


def _load(file: Path, view: str = "auto") -> Loaded:
    """Decode a photograph, decide its view (``view``, or detected when ``"auto"``) and its field
    of view (a disc crop is retina to its edges: all of it)."""
    try:
        image = load_image(file)
    except DataError as error:
        return Loaded(file, error=error)
    seen: View = detect_view(image).view if view == "auto" else view  # type: ignore[assignment]
    fov = find_fov(image) if seen == "whole" else frame_fov(image.shape)
    return Loaded(file, image, fov, view=seen)


def _prefetched_batches(
    files: Sequence[Path], batch_size: int, prepare: Callable[[list[np.ndarray]], PreparedInputs],
    view: str = "auto",
) -> Iterator[LoadedBatch]:
    """Batches of decoded photographs with their network inputs; the next batch is decoded and
    prepared in a background thread while the caller works on the current one."""
    batches = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]

    def load(batch: Sequence[Path]) -> LoadedBatch:
        items = [_load(file, view) for file in batch]
        return LoadedBatch(items, prepare([item.image for item in items if item.image is not None]))

    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="funduskit-decode") as pool:
        pending = pool.submit(load, batches[0])
        for following in [*batches[1:], None]:
            current = pending.result()
            if following is not None:
                pending = pool.submit(load, following)
            yield current


@contextlib.contextmanager
def progress_counter(enabled: bool, total: int, done: int) -> Iterator[Callable[[int], None]]:
    """An ``advance(n)`` callable over a rich progress bar (a no-op when not ``enabled``)."""
    if not enabled:
        yield lambda n: None
        return
    with make_progress() as progress:
        task = progress.add_task("predicting", total=total, completed=done)
        yield lambda n: progress.advance(task, n)


def _is_done(out_dir: Path, file: Path, settings_key: str) -> bool:
    """True when ``file`` has a record from the same settings and the same unchanged file."""
    result = load_result(out_dir, file.name)
    if result is None or result.settings_key != settings_key:
        return False
    try:
        stat = file.stat()
    except OSError:
        return False
    if (result.source_size, result.source_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        return False
    return not result.ok or all((out_dir / name).is_file() for name in (result.mask_file, result.overlay_file) if name)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class _Writer:
    """Writes each photograph's files, then its record."""

    def __init__(self, out_dir: Path, settings_key: str, options: PredictOptions, content: FundusContent | None):
        self.out_dir = out_dir
        self.settings_key = settings_key
        self.options = options
        self.content = content  # the quality gate's content measure (None: graded without it)

    def write_batch(self, batch: LoadedBatch, predictor: Predictor) -> int:
        """Predict the readable photographs of a batch, record all; returns how many failed."""
        images = batch.images
        try:
            predictions = iter(predictor.predict(images, batch.prepared, batch.views) if images else [])
        except FunduskitError as error:  # e.g. a whole photograph and only crop networks: say so per photo
            for item in batch.items:
                self._record(item.file, status="error", error=str(item.error or error))
            return len(batch.items)
        for item in batch.items:
            if item.image is None:
                self._record(item.file, status="error", error=str(item.error))
            else:
                self._write_one(item, next(predictions), vessel_map=bool(predictor.ensembles.get("vessel")))
        return len(batch.items) - len(images)

    def _record(self, file: Path, **values: object) -> None:
        stat = file.stat() if file.exists() else None
        result = ImageResult(
            image_id=file.name,
            image_path=str(file),
            source_size=stat.st_size if stat else None,
            source_mtime_ns=stat.st_mtime_ns if stat else None,
            settings_key=self.settings_key,
            **values,  # type: ignore[arg-type]
        )
        save_result(self.out_dir, result)

    def _write_one(self, loaded: Loaded, prediction: PhotoPrediction, *, vessel_map: bool = True) -> None:
        file, image = loaded.file, loaded.image
        assert image is not None and loaded.fov is not None
        stem = image_stem(file.name)
        disc = disc_of(prediction.mask)
        likeness = self.content.likeness(image) if self.content is not None else None
        quality = grade_photograph(image, loaded.fov, prediction.view, prediction.disc_probability, disc, likeness)
        answered_all = quality.grade != "reject" or self.options.quality == "off"
        if answered_all:
            write_submission(Submission(segmentation={stem: prediction.mask}), self.out_dir)
        overlay_file = f"{OVERLAYS_DIR}/{stem}.png"
        vessels = prediction.vessels * loaded.fov.mask(image.shape)  # no tint outside the retina
        fovea_check = check_fovea(disc, prediction.fovea)  # anatomy's check
        # --quality off answers every photograph: the network's fovea even where anatomy doubts it
        fovea = prediction.fovea if self.options.quality == "off" else fovea_check.position
        overlay = render_overlay(image, prediction.mask, fovea, vessels)
        write_overlay(self.out_dir / overlay_file, overlay)
        vessel_file = None
        if vessel_map:
            vessel_file = f"{VESSELS_DIR}/{stem}.png"
            write_vessel_map(self.out_dir / vessel_file, prediction.vessels)
        if self.options.save_probabilities:
            self._save_probabilities(stem, prediction)
        measures = disc_cup_measures(prediction.mask)
        fovea_x, fovea_y = fovea if fovea is not None else (None, None)
        answered = bool(np.isfinite(prediction.glaucoma_probability))  # NaN: no classifier in the models
        crop = prediction.crop
        answers = dict(
            glaucoma_probability=prediction.glaucoma_probability if answered else None,
            glaucoma_spread=prediction.glaucoma_spread if answered else None,
            classifier_probability=prediction.classifier_probability,
            vcdr=measures.vcdr,
            hcdr=measures.hcdr,
            fovea_x=fovea_x,
            fovea_y=fovea_y,
            fovea_spread=prediction.fovea_spread if fovea is not None else None,
            fovea_disc_diameters=fovea_check.distance_disc_diameters,
            eye=infer_eye_side(measures.disc_centre_x, fovea_x),
            mask_file=f"{SEGMENTATION_DIR}/{stem}.png",
        )
        if not answered_all:  # rejected by the quality gate: no answers, only why
            answers = {key: None for key in answers}
        self._record(
            file,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            disc_area=measures.disc_area,
            cup_area=measures.cup_area,
            disc_x=measures.disc_centre_x,
            disc_y=measures.disc_centre_y,
            overlay_file=overlay_file,
            vessel_file=vessel_file,
            view=prediction.view,
            crop=[crop.x0, crop.y0, crop.side] if crop is not None else None,
            quality=quality.grade,
            quality_reasons="; ".join(quality.reasons),
            quality_measures=quality.measures.as_dict(),
            **answers,
        )

    def _save_probabilities(self, stem: str, prediction: PhotoPrediction) -> None:
        for part in SEGMENTATION_TASKS:
            probability = getattr(prediction, f"{part}_probability")
            array = shrink_map(probability, self.options.probability_side).astype(np.float16)
            buffer = io.BytesIO()
            np.save(buffer, array)
            atomic_write_bytes(probability_path(self.out_dir, stem, part), buffer.getvalue())


def load_fundus_content() -> FundusContent | None:
    """The quality gate's content measure (:mod:`funduskit.inference.fundus_content`), or None with a
    warning where its ImageNet weights are not installed (the gate then grades without it)."""
    try:
        return FundusContent()
    except FunduskitError as error:
        warnings.warn(f"the quality gate grades without its content measure: {error}", stacklevel=2)
        return None


def write_vessel_map(path: Path, probability: np.ndarray) -> None:
    """Save an (H, W) probability in [0, 1] as an 8-bit grey PNG (255 = 1), atomically."""
    levels = np.clip(probability * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", levels)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 array
        raise RuntimeError(f"cannot encode the vessel map for {path}")
    atomic_write_bytes(path, encoded.tobytes())


def shrink_map(probability: np.ndarray, side: int) -> np.ndarray:
    """A (H, W) float map shrunk (area average) so its longer side is at most ``side``."""
    height, width = probability.shape
    scale = side / max(height, width)
    if scale >= 1:
        return probability.astype(np.float32, copy=False)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(probability.astype(np.float32, copy=False), size, interpolation=cv2.INTER_AREA)


def _write_collected(
    out_dir: Path,
    results: Sequence[ImageResult],
    models: ModelSet,
    options: PredictOptions,
    runtime: str,
    passed_over: Sequence[PassedOver] = (),
) -> None:
    """Tables, the submission's CSV files and the report, from all records."""
    write_tables(out_dir, results)
    ok = [r for r in results if r.ok]
    submission = Submission(
        glaucoma_risk={r.image_id: float(r.glaucoma_probability) for r in ok  # type: ignore[arg-type]
                       if r.glaucoma_probability is not None and np.isfinite(r.glaucoma_probability)},
        fovea={r.image_id: (float(r.fovea_x), float(r.fovea_y)) for r in ok if r.fovea_x is not None},  # type: ignore[arg-type]
    )
    if ok:
        write_submission(submission, out_dir)
    settings = {
        "models": models_text(models),
        "thresholds": models.thresholds.as_dict(),
        "test-time flips": "yes" if options.tta else "no",
        "runtime": runtime,
    }
    write_report(results, out_dir, settings=settings, notice=starter_notice(models),
                 passed_over=[(item.path, item.reason) for item in passed_over])


def models_text(models: ModelSet) -> str:
    """``"vessel x1 (starter), disc x2 (starter), ..."``: which models answered each task."""
    return ", ".join(f"{task} x{len(items)} ({models.origin[task]})" for task, items in models.runs.items())


def starter_notice(models: ModelSet) -> str:
    """The warning of a prediction the starter models took part in ("" when none did)."""
    tasks = [task for task, origin in models.origin.items() if origin == STARTER]
    if not tasks:
        return ""
    return (f"{', '.join(tasks)}: answered by funduskit's research-use starter models, trained on small public "
            "research sets (see docs/starter-models.md for what they were and were not trained on). "
            "They are not a diagnosis.")
