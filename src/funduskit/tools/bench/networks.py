"""The benchmark's networks, runtimes and photographs: the preset configurations (sizes scaled),
untrained networks calibrated to be confident (:func:`make_confident`), the runtime and the module of
each mode, the predictor's ensembles, and synthetic fundus photographs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from funduskit.core.tasks import TASKS
from funduskit.tools.bench.options import CAMERA_SIZES, EXPORTED_MODES, MODES, TINY_KWARGS, BenchOptions

#: Scale of the untrained classifier's last layer (confident probabilities, as a trained one's).
CONFIDENT_SCALE = 16.0


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
    size = config.data.input_size
    if task in ("disc", "cup", "fovea"):
        make_confident(network, task, size, _vessel_channel(options, size))
    else:
        make_confident(network, task, size)
    return network


def _vessel_channel(options: BenchOptions, size: int) -> np.ndarray:
    """(S, S) float32: the map the predictor feeds the disc, cup and fovea networks on the
    calibration photograph, i.e. the benchmark's own (untrained) vessel generator's probability,
    resized to ``size``: the fitted head then sees the features it will see in the pipeline (zeros
    there, as before, would calibrate a network on an input it never gets)."""
    import torch

    from funduskit.inference.predictor import network_input
    from funduskit.models.maps import resize_maps

    config = task_config("vessel", options)
    vessel_size = config.data.input_size
    photo = network_input(_calibration_photo(), config.data.preprocessing, vessel_size)
    network = build_network("vessel", options)
    with torch.inference_mode():
        logits = network(torch.from_numpy(photo).permute(2, 0, 1)[None])[:, :1]
    return resize_maps(torch.sigmoid(logits).numpy(), size)[0, 0]


def _calibration_photo() -> np.ndarray:
    """The synthetic photograph every network is calibrated on (quarter size: the letterboxed
    network input is the same)."""
    return synthetic_photo(0, 0.25)


#: The drawn optic disc of :func:`synthetic_photo`, which the disc and cup heads are fitted to: the
#: pixels whose red channel is above 220 (the disc is drawn (240, 200, 150), its cup (255, 235, 210),
#: the retina (170, 80, 40), with noise of standard deviation 6).
DRAWN_DISC_RED = 220
#: Share of the drawn disc's area that the cup map's foreground covers (vertical CDR about 0.5).
CUP_AREA_OF_DISC = 0.25
#: Share of the pixels above 0.5 of the maps whose head is not fitted (the fovea's confidence: nothing
#: drawn to fit it to; the disc and cup where the head's map is too coarse, below
#: :data:`MIN_PROBE_PIXELS` disc pixels: the tests' tiny networks).
FOREGROUND = {"disc": 0.2, "cup": 0.06, "fovea": 0.01}
MIN_PROBE_PIXELS = 64
#: Standard deviation of the calibrated logits, and the ridge of the heads' least-squares fit.
CONFIDENT_SPREAD = 6.0
RIDGE = 1e-3


def make_confident(network, task: str, size: int, vessels: np.ndarray | None = None) -> None:  # noqa: ANN001
    """Give an untrained network's last layer the confidence and the shapes of a trained network's.

    Untrained maps sit within a few hundredths of 0.5, where thresholding flips with any rounding,
    and their strongest response is the dark surround: calibrated as they were, the disc's largest
    blob was a ring around the field of view, which hole filling turned into the whole photograph
    or not at a rounding's whim (bf16 against fp32: disc Dice 0.097 on the AVX-512 BF16 kind).
    So on a synthetic photograph (with ``vessels``, (S, S), as its fourth channel: what the
    predictor feeds; zeros without), the disc and cup heads are fitted by ridge least squares on
    the frozen decoder features to a dome over the drawn disc (:data:`DRAWN_DISC_RED`, :func:`_dome`):
    a linear probe, which gives one blob where a trained network's would be. The logits are then
    shifted and scaled so that as many pixels as the drawn disc holds are above 0.5 (the cup:
    :data:`CUP_AREA_OF_DISC` of them, the dome's top, inside the disc; the fovea, and a disc or cup
    map too coarse to hold the drawn disc, keep the head's direction: :data:`FOREGROUND`) and
    their standard deviation is :data:`CONFIDENT_SPREAD`. The classifier's last layer is scaled by
    :data:`CONFIDENT_SCALE`. Timing does not depend on it; agreement checks become meaningful.
    """
    import cv2
    import torch

    if task == "vessel":
        return
    if task == "glaucoma":
        with torch.no_grad():
            network.fc.weight.mul_(CONFIDENT_SCALE)
        return
    from funduskit.inference.predictor import network_input
    from funduskit.transforms.preprocess import Geometry

    original = _calibration_photo()
    photo = torch.from_numpy(network_input(original, "standardize", size)).permute(2, 0, 1)
    channel = torch.zeros(1, size, size) if vessels is None else torch.from_numpy(vessels)[None]
    captured: list[torch.Tensor] = []
    handle = network.head.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    with torch.no_grad():
        try:
            network(torch.cat([photo, channel])[None])
        finally:
            handle.remove()
        side = captured[0].shape[-1]  # the head sees the decoder's map, (1, C, s, s), s <= S
        features = captured[0][0].flatten(1).T.double()  # (s * s, C)
        red = (original[..., 0] > DRAWN_DISC_RED).astype(np.float32)
        disc = cv2.resize(Geometry.for_image(original, size).to_network(red), (side, side),
                          interpolation=cv2.INTER_AREA) > 0.5
        if task == "fovea" or disc.sum() < MIN_PROBE_PIXELS:
            weight, bias = network.head.weight[0].flatten().double(), float(network.head.bias[0])
            share = FOREGROUND[task]
        else:
            target = torch.from_numpy(_dome(disc).flatten())
            gram = features.T @ features + RIDGE * len(features) * torch.eye(features.shape[1], dtype=torch.float64)
            weight, bias = torch.linalg.solve(gram, features.T @ target), 0.0
            share = float(disc.mean()) * (CUP_AREA_OF_DISC if task == "cup" else 1.0)
        logits = features @ weight + bias
        threshold = float(torch.quantile(logits, 1 - share))
        scale = CONFIDENT_SPREAD / max(float(logits.std()), 1e-12)
        network.head.weight[0] = (weight * scale).reshape(network.head.weight[0].shape).float()
        network.head.bias[0] = (bias - threshold) * scale


def _dome(disc: np.ndarray) -> np.ndarray:
    """(s, s) float64 target of the disc and cup heads: ``1 - (r / R) ** 2`` clipped to [-1, 1], r
    the distance to the centre of the (s, s) bool ``disc``, R its equivalent radius: positive inside,
    sloped at the disc's edge and at the cup's (a plateau there would leave the cup's edge to noise;
    a dome of the cup's own radius was too small for a linear probe on a quarter-size map to place)."""
    rows, columns = np.nonzero(disc)
    radius = max(np.sqrt(len(rows) / np.pi), 1.0)
    y, x = np.mgrid[: disc.shape[0], : disc.shape[1]]
    distance_squared = (y - rows.mean()) ** 2 + (x - columns.mean()) ** 2
    return np.clip(1 - distance_squared / radius**2, -1.0, 1.0)


def make_runtime(mode: str, threads: int, precision: str = "auto"):  # noqa: ANN201 - Runtime
    """The runtime of a mode: the optimised one takes ``precision`` (``auto``: bf16 where the CPU
    computes it natively, as ``funduskit predict`` does); the others are fp32 NCHW."""

    from funduskit.core.config import RuntimeConfig
    from funduskit.runtime.device import resolve_runtime

    optimised = mode == "torch"
    return resolve_runtime(RuntimeConfig(device="cpu", threads=threads, channels_last=optimised,
                                         precision=precision if optimised else "fp32"))


def prepare_for_mode(network, mode: str, runtime, onnx_path: Path | None = None, input_size: int = 0):  # noqa: ANN001, ANN201
    """``network`` as the mode runs it (a new module; ``network`` is left as it is)."""
    if mode == "baseline":
        return copy.deepcopy(network).eval()
    if mode == "torch":
        from funduskit.runtime.optimise import optimise_for_inference

        return optimise_for_inference(network, runtime)
    if mode in EXPORTED_MODES:
        from funduskit.tools.export import export_network

        assert onnx_path is not None
        if not onnx_path.is_file():
            export_network(network, onnx_path, input_size=input_size)
        if mode == "openvino":  # fp32, as `funduskit predict --backend openvino` runs by default
            from funduskit.inference.openvino_backend import OpenVinoNetwork

            return OpenVinoNetwork(onnx_path, threads=runtime.threads, precision="fp32")
        from funduskit.inference.onnx_backend import OnnxNetwork

        return OnnxNetwork(onnx_path, threads=runtime.threads)
    raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")


def precision_of(mode: str, runtime) -> str:  # noqa: ANN001
    return "bf16 autocast" if mode == "torch" and runtime.bf16 else "fp32"


def build_ensembles(options: BenchOptions, counts: dict[str, int], mode: str, runtime, work: Path):  # noqa: ANN001, ANN202
    """The predictor's ensembles: ``counts[task]`` members of each task, the glaucoma members
    alternating the two preprocessings; members of a task share weights (timing only)."""
    from funduskit.inference.model_store import RunInfo
    from funduskit.inference.predictor import Member

    ensembles: dict[str, list[Member]] = {}
    for task in TASKS:
        exported = mode in EXPORTED_MODES and (work / f"{task}.onnx").is_file()
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
