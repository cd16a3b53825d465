"""OpenVINO backend: an exported network (``model.onnx``, ``funduskit export``; the starter models)
compiled by OpenVINO's CPU plugin, run without torch.

:class:`OpenVinoNetwork` mirrors :class:`funduskit.inference.onnx_backend.OnnxNetwork`: an
:class:`funduskit.inference.array_network.ArrayNetwork` mapping (B, C, S, S) float32 to the same
logits as a numpy array.
OpenVINO reads the ONNX file itself (no conversion step, nothing written). The runtime's precision
is OpenVINO's inference precision: ``bf16`` runs the convolutions in bfloat16 on CPUs that compute
it natively (AMX, AVX-512 BF16: 2.3x ONNX Runtime's fp32 on the starter models' whole pipeline, but
its answers move: opt-in, docs/performance.md), ``fp32`` keeps every layer in float32 (OpenVINO's own default on such CPUs is
bf16; it is set explicitly here so that ``--precision fp32`` means fp32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.inference.array_network import as_float32_batch
from funduskit.inference.model_store import RunInfo
from funduskit.inference.onnx_backend import onnx_file
from funduskit.runtime.device import Runtime

#: OpenVINO's names of the runtime's precisions (``INFERENCE_PRECISION_HINT``).
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


def _openvino():  # noqa: ANN202 - the module
    try:
        import openvino
    except ImportError as error:
        raise FunduskitError("the OpenVINO backend needs openvino: pip install openvino "
                             "(or use --backend onnx)") from error
    return openvino


class OpenVinoNetwork:
    """An exported network compiled for OpenVINO's CPU plugin.

    Args:
        path: the ``.onnx`` file (one input ``(B, C, S, S)`` float32, one output: logits).
        threads: inference threads (0 = OpenVINO's default).
        precision: ``"fp32"`` or ``"bf16"`` (OpenVINO's inference precision).

    ``network(x (B, C, S, S))`` -> float32 numpy logits of the network's output shape (a numpy
    array or a torch tensor in).
    """

    def __init__(self, path: str | Path, *, threads: int = 0, precision: str = "fp32"):
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "ONNX model not found", fix="export the models with `funduskit export`")
        if precision not in PRECISION_HINTS:
            raise FunduskitError(f"OpenVINO precision must be one of {', '.join(PRECISION_HINTS)}, not {precision!r}")
        ov = _openvino()
        self.path = path
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision], "PERFORMANCE_HINT": "LATENCY",
                  **({"INFERENCE_NUM_THREADS": threads} if threads > 0 else {})}
        try:
            self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as error:  # noqa: BLE001 - OpenVINO raises its own exception types
            raise DataError(path, f"cannot be compiled by OpenVINO ({type(error).__name__}: {error})",
                            fix="export it again with `funduskit export`, or use --backend onnx") from error
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.request.infer({0: as_float32_batch(x)})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the request reuses it

    def __repr__(self) -> str:
        return f"OpenVinoNetwork(path={self.path}, precision={self.precision})"


def load_openvino_network(run: RunInfo, runtime: Runtime) -> OpenVinoNetwork:
    """The OpenVINO network of a run's export (a loader for ``Predictor.from_runs``).

    Raises:
        FunduskitError: the run has no export, or the runtime is on a GPU (OpenVINO's CPU plugin
            is what is used; predict on CUDA with --backend onnx or torch).
    """
    if runtime.device_type != "cpu":
        raise FunduskitError(f"the OpenVINO backend runs on the CPU, and the runtime is on {runtime.device}; "
                             "use --backend onnx or --backend torch on a GPU (or --device cpu)")
    return OpenVinoNetwork(onnx_file(run), threads=runtime.threads, precision=runtime.precision)
