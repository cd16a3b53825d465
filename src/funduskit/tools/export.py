"""``funduskit export``: trained runs to ONNX, for the ONNX Runtime backend of ``funduskit predict``.

Each run of ``--models DIR`` (found as ``predict`` finds them) becomes an exported run directory
in ``--out``, at the same relative place::

    OUT/models.yaml              manifest: task -> exported run directories
    OUT/thresholds.json          copied when DIR has one (``funduskit tune``)
    OUT/<run>/config.yaml        the run's configuration (input size, preprocessing)
    OUT/<run>/model.onnx         the network: input ``(B, C, S, S)`` float32, output logits
    OUT/<run>/export.json        opset, input shape, and the checked difference to torch

The networks are exported with torch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``: the ``torch.export``-based one needs ``onnxscript``, which funduskit does not
depend on), opset 17, with a dynamic batch axis. Every export is checked: ONNX Runtime's
probabilities on a random batch must match torch's within :data:`CHECK_TOLERANCE`.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn

from funduskit.core.config import save_config
from funduskit.core.errors import FunduskitError
from funduskit.core.files import atomic_path
from funduskit.inference.model_store import (
    MANIFEST,
    THRESHOLDS_FILE,
    RunInfo,
    find_runs,
)
from funduskit.inference.onnx_backend import INPUT_NAME, OUTPUT_NAME, OnnxNetwork
from funduskit.runs.layout import CONFIG_FILE, ONNX_FILE

OPSET = 17
#: Largest accepted difference between ONNX Runtime's and torch's sigmoid outputs, on a random
#: input (the worst pixel): float32 weights, and weights rounded to float16 (:func:`store_float16`;
#: measured 2e-3 on the starter networks, whose held-out Dice it leaves unchanged to 3 decimals).
CHECK_TOLERANCE = 1e-3
FLOAT16_CHECK_TOLERANCE = 3e-2
EXPORT_RECORD = "export.json"


@dataclass
class ExportedRun:
    """One exported network."""

    task: str
    source: str
    run_dir: str
    input_shape: list[int]
    opset: int
    max_probability_difference: float | None = None
    float16_storage: bool = False


@dataclass
class ExportSummary:
    """What ``export_runs`` wrote."""

    out_dir: Path
    runs: list[ExportedRun] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST


def export_network(network: nn.Module, path: str | Path, *, input_size: int, in_channels: int | None = None,
                   opset: int = OPSET) -> Path:
    """Export ``network`` (eval mode, fp32, on CPU) to ``path`` (written atomically).

    Args:
        network: a funduskit network taking (B, C, S, S).
        path: the ``.onnx`` file to write.
        input_size: S, the square input side the network is exported for.
        in_channels: C (default ``network.in_channels``).
        opset: ONNX opset (17 or later).
    Returns:
        ``path``. The graph has one input ``input`` (B, C, S, S) with a dynamic batch axis and
        one output ``logits``.
    """
    path = Path(path)
    channels = int(in_channels if in_channels is not None else getattr(network, "in_channels"))
    network = network.eval().to("cpu", torch.float32)
    example = torch.zeros(1, channels, input_size, input_size)
    try:
        with atomic_path(path) as temporary, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                network, (example,), str(temporary), dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except torch.onnx.errors.OnnxExporterError as error:
        problem = str(error).split("[Caused by")[0].strip()
        raise FunduskitError(f"{type(network).__name__} at {input_size}x{input_size} cannot be exported to ONNX: "
                             f"{problem}") from error
    return path


def export_run(checkpoint: str | Path, target: str | Path, *, opset: int = OPSET, check: bool = True,
               float16_storage: bool = False) -> ExportedRun:
    """Export one trained network (``best.pt``) into the run directory ``target``: ``model.onnx``
    and ``config.yaml``; ``export.json`` is the caller's to write (it knows the final layout).

    Raises:
        FunduskitError: the export differs from torch by more than :data:`CHECK_TOLERANCE`.
    """
    from funduskit.runs.networks import load_trained_model

    target = Path(target)
    network, config = load_trained_model(checkpoint)
    size = int(config.data.input_size)
    path = export_network(network, target / ONNX_FILE, input_size=size, opset=opset)
    if float16_storage:
        store_float16(path)
    save_config(config, target / CONFIG_FILE)
    difference = None
    if check:
        difference = max_probability_difference(network, OnnxNetwork(path, threads=torch.get_num_threads()),
                                                 input_size=size)
        tolerance = FLOAT16_CHECK_TOLERANCE if float16_storage else CHECK_TOLERANCE
        if difference > tolerance:
            raise FunduskitError(
                f"{path}: ONNX Runtime differs from torch by {difference:.2e} in probability "
                f"(more than {tolerance}); the export is not usable"
            )
    return ExportedRun(task=config.task, source=str(checkpoint), run_dir=str(target), opset=opset,
                       input_shape=[-1, int(network.in_channels), size, size], max_probability_difference=difference,
                       float16_storage=float16_storage)


#: Initialisers smaller than this stay float32 (shapes, scalars: nothing to gain).
FLOAT16_MIN_ELEMENTS = 64


def store_float16(path: str | Path) -> Path:
    """Rewrite an ONNX file so that its float32 weights are stored as float16, each followed by a
    ``Cast`` back to float32: half the bytes on disk, the same float32 arithmetic (ONNX Runtime's
    constant folding turns every such Cast into a float32 weight when the session loads, so the
    speed is that of the float32 file). onnxconverter-common's ``convert_float_to_float16`` does
    something else (it makes the arithmetic float16, slow on CPUs), hence this small pass.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        if values.size < FLOAT16_MIN_ELEMENTS:
            continue
        name = initializer.name
        stored = f"{name}__float16"
        initializer.CopyFrom(numpy_helper.from_array(values.astype("float16"), stored))
        casts.append(helper.make_node("Cast", [stored], [name], to=TensorProto.FLOAT, name=f"{stored}__cast"))
    nodes = [*casts, *graph.node]  # the casts first, so the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    with atomic_path(path) as temporary:
        onnx.save(model, str(temporary))
    return path


def max_probability_difference(network: nn.Module, exported: OnnxNetwork, *, input_size: int, batch: int = 2,
                               seed: int = 0) -> float:
    """Largest |sigmoid(torch) - sigmoid(ONNX Runtime)| on a random (batch, C, S, S) input."""
    channels = int(getattr(network, "in_channels"))
    x = torch.randn(batch, channels, input_size, input_size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = torch.sigmoid(network.eval()(x).float())
        got = torch.sigmoid(torch.from_numpy(exported(x)))
    if expected.shape != got.shape:
        raise FunduskitError(f"{exported.path}: ONNX output shape {tuple(got.shape)} != torch {tuple(expected.shape)}")
    return float((expected - got).abs().max())


def _target_dir(run: RunInfo, models_dir: Path, out_dir: Path, taken: set[Path]) -> Path:
    """Where the exported copy of ``run`` goes: its place relative to ``models_dir``, or
    ``<task>/<name>`` (numbered if taken) for a run outside it."""
    try:
        relative = run.run_dir.resolve().relative_to(models_dir.resolve())
    except ValueError:
        relative = Path(run.task) / run.name
    target = out_dir / relative if str(relative) != "." else out_dir / run.task / run.name
    base, number = target, 1
    while target in taken:
        number += 1
        target = base.with_name(f"{base.name}-{number}")
    taken.add(target)
    return target


def export_runs(
    models_dir: str | Path,
    out_dir: str | Path,
    *,
    opset: int = OPSET,
    check: bool = True,
    float16_storage: bool = False,
    on_run: Callable[[RunInfo], None] | None = None,
) -> ExportSummary:
    """Export every run of ``models_dir`` to ONNX in ``out_dir`` (layout in the module doc).

    Args:
        models_dir: a folder of run directories or a ``models.yaml`` manifest (as ``predict`` takes).
        out_dir: output folder; it becomes a ``--models`` folder for ``predict --backend onnx``.
        opset: ONNX opset.
        check: compare ONNX Runtime with torch on a random batch of each network.
        float16_storage: store the weights in float16 (:func:`store_float16`).
        on_run: called with each run before it is exported (progress).
    Raises:
        FunduskitError: no run found, or an export differs from torch by more than
            :data:`CHECK_TOLERANCE`.
    """
    models_dir, out_dir = Path(models_dir), Path(out_dir)
    runs = find_runs(models_dir)
    if not runs:
        raise FunduskitError(f"{models_dir}: no training run found (folders holding config.yaml and best.pt)")
    if out_dir.resolve() == models_dir.resolve():
        raise FunduskitError("--out must be another folder than --models")
    summary = ExportSummary(out_dir)
    manifest: dict[str, list[str]] = {}
    taken: set[Path] = set()
    for task, task_runs in runs.items():
        for run in task_runs:
            if on_run is not None:
                on_run(run)
            target = _target_dir(run, models_dir, out_dir, taken)
            exported = export_run(run.checkpoint, target, opset=opset, check=check, float16_storage=float16_storage)
            exported.run_dir = str(target.relative_to(out_dir))
            (target / EXPORT_RECORD).write_text(json.dumps(asdict(exported), indent=1) + "\n", encoding="utf-8")
            summary.runs.append(exported)
            manifest.setdefault(task, []).append(exported.run_dir)
    (out_dir / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    if (models_dir / THRESHOLDS_FILE).is_file():
        shutil.copyfile(models_dir / THRESHOLDS_FILE, out_dir / THRESHOLDS_FILE)
    return summary
