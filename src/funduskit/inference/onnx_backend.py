"""ONNX Runtime backend: an exported network (``funduskit export``) that the predictor runs
without torch.

:class:`OnnxNetwork` is an :class:`funduskit.inference.array_network.ArrayNetwork`: called on the
same input batch as the torch network, (B, C, S, S) float32, it gives the same logits as a numpy
array, through an ``onnxruntime.InferenceSession``; :class:`funduskit.inference.predictor.Predictor`
needs nothing else to use it (``Predictor.from_runs(..., loader=load_onnx_network)``, ``funduskit predict
--backend onnx``). Sessions run with the runtime's thread count and without ONNX Runtime's
memory arena, so that an ensemble of twenty-five sessions does not keep twenty-five activation
peaks alive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.inference.array_network import as_float32_batch
from funduskit.inference.model_store import RunInfo
from funduskit.runs.layout import ONNX_FILE
from funduskit.runtime.device import Runtime

#: File name of the exported network in an exported run directory.
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def _onnxruntime():  # noqa: ANN202 - the module
    try:
        import onnxruntime
    except ImportError as error:
        raise FunduskitError(
            "the ONNX backend needs onnxruntime: pip install 'funduskit[onnx]' (or use --backend torch)"
        ) from error
    return onnxruntime


def session_options(threads: int = 0):  # noqa: ANN201 - onnxruntime.SessionOptions
    """ONNX Runtime options: all graph optimisations, ``threads`` intra-op threads (0 = ONNX
    Runtime's default, one a physical core), sequential execution, no memory arena."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(threads, 0)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    return options


def providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``): CUDA
    first when asked for and present."""
    available = _onnxruntime().get_available_providers()
    chosen = ["CUDAExecutionProvider"] if str(device).startswith("cuda") and "CUDAExecutionProvider" in available else []
    return [*chosen, "CPUExecutionProvider"]


class OnnxNetwork:
    """An exported network on ONNX Runtime.

    Args:
        path: the ``.onnx`` file (one input ``(B, C, S, S)`` float32, one output: logits).
        threads: intra-op threads (0 = ONNX Runtime's default).
        device: ``"cpu"`` or ``"cuda"`` (the CUDA provider is used where onnxruntime has it).

    ``network(x (B, C, S, S))`` -> float32 numpy logits of the exported network's output shape.
    The input may be a numpy array or a torch tensor, in any dtype; it is copied to a contiguous
    float32 array where it is not one.
    """

    def __init__(self, path: str | Path, *, threads: int = 0, device: str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "ONNX model not found", fix="export the models with `funduskit export`")
        ort = _onnxruntime()
        self.path = path
        self.device = str(device)
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=providers(self.device))
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise DataError(path, f"cannot be loaded by ONNX Runtime ({type(error).__name__}: {error})",
                            fix="export it again with `funduskit export`") from error
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {self.input_name: as_float32_batch(x)})[:1]
        return logits

    def __repr__(self) -> str:
        return f"OnnxNetwork(path={self.path}, input={self.input_shape}, providers={self.session.get_providers()})"


def onnx_file(run: RunInfo) -> Path:
    """The exported network of a run: its checkpoint when that is an ``.onnx`` file, else
    ``model.onnx`` in its run directory.

    Raises:
        FunduskitError: the run has no exported network (with the command that makes one).
    """
    if run.checkpoint.suffix == ".onnx":
        return run.checkpoint
    candidate = run.run_dir / ONNX_FILE
    if candidate.is_file():
        return candidate
    raise FunduskitError(
        f"{run.run_dir}: no ONNX model ({ONNX_FILE}) for this {run.task} run; export the models first: "
        f"`funduskit export --models MODELS --out ONNX_MODELS`, then `funduskit predict ... --models ONNX_MODELS "
        f"--backend onnx`"
    )


def load_onnx_network(run: RunInfo, runtime: Runtime) -> OnnxNetwork:
    """The ONNX Runtime network of a run (a loader for ``Predictor.from_runs``)."""
    return OnnxNetwork(onnx_file(run), threads=runtime.threads, device=runtime.device)
