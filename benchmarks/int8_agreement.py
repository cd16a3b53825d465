"""OpenVINO int8 (NNCF post-training quantisation, calibrated on real photographs) against OpenVINO
fp32 on the trained starter models: the whole pipeline's seconds and the answers' agreement.

Every starter network is calibrated on the inputs it receives from ``--calibrate`` photographs of each
shared set (captured while the fp32 predictor answers them, so crop networks see real crops and
the vessel network real photographs), quantised with NNCF, and then both predictors answer
``--evaluate`` *other* photographs of each set. Agreement per photograph against fp32, worst
photograph, against issue 16's limits (disc / cup Dice >= 0.99, vCDR within 0.01, fovea within
2 px, probability within 0.01; ``benchmarks/backends.py``). Two recipes: NNCF's defaults (mixed
preset), and the first and last layer of every network kept in fp32 (performance preset).

Usage::

    pip install nncf          # not a funduskit dependency; "skipped" without it or the shared data
    python benchmarks/int8_agreement.py [--calibrate 5] [--evaluate 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from backends import LIMITS
from int8 import nncf_and_openvino
from machine import cpu_flags

#: recipe -> (NNCF preset name, keep the first and last layer in fp32)
RECIPES: dict[str, tuple[str, bool]] = {
    "NNCF defaults (mixed preset)": ("MIXED", False),
    "first and last layer fp32 (performance preset)": ("PERFORMANCE", True),
}


def shared_photos(data: Path, calibrate: int, evaluate: int) -> tuple[list[Path], list[Path]]:
    """Every 10th Drishti-GS1 photograph, every 40th RIM-ONE DL crop, every 5th DRIVE photograph:
    the first ``calibrate`` of each set to calibrate on, the next ``evaluate`` (offset) to compare."""
    sets = [sorted((data / "drishti-gs1" / "training" / "images").glob("*.jpg")),
            sorted((data / "rim-one-dl").rglob("partitioned_randomly/training_set/*/*.png")),
            sorted((data / "drive" / "training" / "images").glob("*.png"))]
    calibration, evaluation = [], []
    for files in sets:
        step = max(1, len(files) // (2 * max(calibrate, evaluate)))
        calibration += files[0::step * 2][:calibrate]
        evaluation += files[step::step * 2][:evaluate]
    return calibration, evaluation


class RecordingNetwork:
    """A network (ArrayNetwork) that keeps a copy of every (1, C, S, S) input it is given (the calibration set)."""

    def __init__(self, network):  # noqa: ANN001 - an OpenVinoNetwork
        self.network = network
        self.inputs: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        array = np.asarray(x, dtype=np.float32)
        self.inputs += [array[i : i + 1].copy() for i in range(array.shape[0])]
        return self.network(x)


def answer(predictor, photos: Sequence[np.ndarray], views: Sequence[str]) -> tuple[list, float]:  # noqa: ANN001
    """Each photograph's prediction, one at a time, and the seconds it took in all."""
    started = time.perf_counter()
    predictions = [predictor.predict([photo], views=[view])[0] for photo, view in zip(photos, views)]
    return predictions, time.perf_counter() - started


def quantised_predictor(fp32, recorded: dict[Path, RecordingNetwork], preset: str, keep_ends: bool, work: Path,
                        threads: int):  # noqa: ANN001, ANN201
    """A copy of the fp32 predictor whose OpenVINO networks run NNCF-quantised int8 models."""
    import copy
    import dataclasses

    import nncf
    import openvino as ov

    core = ov.Core()
    quantised = copy.copy(fp32)
    quantised.ensembles = {}
    for task, members in fp32.ensembles.items():
        quantised.ensembles[task] = []
        for member in members:
            source = recorded[member.run.run_dir].network
            model = core.read_model(str(source.path))
            weighted = [op.get_friendly_name() for op in model.get_ordered_ops()
                        if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul")]
            ignored = nncf.IgnoredScope(names=[weighted[0], weighted[-1]]) if keep_ends else nncf.IgnoredScope()
            inputs = recorded[member.run.run_dir].inputs
            int8 = nncf.quantize(model, nncf.Dataset(inputs), subset_size=len(inputs),
                                 preset=getattr(nncf.QuantizationPreset, preset), ignored_scope=ignored)
            path = work / f"{member.run.run_dir.name}-{preset}-{keep_ends}.xml"
            ov.save_model(int8, str(path))
            network = copy.copy(source)
            network.compiled = core.compile_model(str(path), "CPU", {
                "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
            network.request = network.compiled.create_infer_request()
            quantised.ensembles[task].append(dataclasses.replace(member, network=network))
    return quantised


def differences(reference: list, other: list) -> dict[str, list[float]]:
    """Per-photograph disc and cup Dice, vCDR, fovea and probability differences."""
    from funduskit.scoring.metrics import dice, vertical_cdr

    found: dict[str, list[float]] = {"disc": [], "cup": [], "vcdr": [], "fovea_px": [], "probability": []}
    for a, b in zip(reference, other):
        found["disc"].append(dice(a.mask < 255, b.mask < 255))
        found["cup"].append(dice(a.mask == 0, b.mask == 0))
        found["vcdr"].append(abs(vertical_cdr(a.mask) - vertical_cdr(b.mask)))
        if a.fovea is not None and b.fovea is not None:
            found["fovea_px"].append(float(np.hypot(a.fovea[0] - b.fovea[0], a.fovea[1] - b.fovea[1])))
        found["probability"].append(abs(a.glaucoma_probability - b.glaucoma_probability))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--calibrate", type=int, default=5, help="calibration photographs per set")
    parser.add_argument("--evaluate", type=int, default=5, help="compared photographs per set")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    modules = nncf_and_openvino()
    if modules is None:
        return 0
    nncf, ov = modules
    if not (args.data / "drishti-gs1").is_dir():
        print(f"skipped: {args.data} holds no shared real sets (research-use data is never bundled)")
        return 0
    from funduskit.core.config import RuntimeConfig
    from funduskit.data.io import load_image
    from funduskit.data.view import detect_view
    from funduskit.inference.model_store import find_runs
    from funduskit.inference.openvino_backend import load_openvino_network
    from funduskit.inference.predictor import Predictor
    from funduskit.runtime.device import resolve_runtime

    runtime = resolve_runtime(RuntimeConfig(device="cpu", threads=args.threads, precision="fp32"))
    starter = Path(__file__).resolve().parents[1] / "src" / "funduskit" / "starter_models"
    fp32 = Predictor.from_runs(find_runs(starter), runtime, loader=load_openvino_network)
    calibration, evaluation = shared_photos(args.data, args.calibrate, args.evaluate)
    recorded: dict[Path, RecordingNetwork] = {}
    for members in fp32.ensembles.values():
        for member in members:
            member.network = recorded.setdefault(member.run.run_dir, RecordingNetwork(member.network))
    photos = [load_image(path) for path in calibration]
    answer(fp32, photos, [detect_view(photo).view for photo in photos])
    for members in fp32.ensembles.values():
        for member in members:
            member.network = recorded[member.run.run_dir].network
    photos = [load_image(path) for path in evaluation]
    views = [detect_view(photo).view for photo in photos]
    reference, _ = answer(fp32, photos, views)
    print(f"\nOpenVINO {ov.__version__}, NNCF {nncf.__version__}; CPU flags: {cpu_flags()}; {os.cpu_count()} cores, "
          f"{args.threads} threads; starter models; calibrated on {len(calibration)} real photographs, compared on "
          f"{len(evaluation)} others\n")
    print("| int8 recipe | fp32 s / photo | int8 s / photo | speed-up | disc Dice worst | cup Dice worst "
          "| vCDR diff max | fovea px max | probability diff max | within limits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for recipe, (preset, keep_ends) in RECIPES.items():
            int8 = quantised_predictor(fp32, recorded, preset, keep_ends, Path(folder), args.threads)
            answer(int8, photos[:1], views[:1])  # warm-up
            _, fp32_seconds = answer(fp32, photos, views)
            answers, int8_seconds = answer(int8, photos, views)
            found = differences(reference, answers)
            worst = {key: (min(values) if key in ("disc", "cup") else max(values)) if values else float("nan")
                     for key, values in found.items()}
            within = (worst["disc"] >= LIMITS["dice"] and worst["cup"] >= LIMITS["dice"]
                      and all(worst[key] <= LIMITS[key] for key in ("vcdr", "fovea_px", "probability")))
            print(f"| {recipe} | {fp32_seconds / len(photos):.3f} | {int8_seconds / len(photos):.3f} | "
                  f"{fp32_seconds / int8_seconds:.2f} | {worst['disc']:.4f} | {worst['cup']:.4f} | {worst['vcdr']:.4f} | "
                  f"{worst['fovea_px']:.2f} | {worst['probability']:.4f} | {'yes' if within else 'no'} |", flush=True)
    print(f"\ncommand: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
