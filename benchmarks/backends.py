"""The backends and precisions of ``funduskit predict`` on trained networks and real photographs:
speed, and agreement with ONNX Runtime fp32.

Each backend predicts the same folder with the starter models (trained networks; ``--models`` for
others) in a fresh process, twice: over the first ``--small`` photographs and over all of them, so
that the marginal seconds per photograph leave out what a run pays once. Agreement is measured per
photograph against ``--backend onnx`` (fp32): disc and cup Dice between the submission masks, vCDR
difference, fovea distance in pixels and glaucoma probability difference, reported as the worst
photograph and the mean, against the limits of issue 16 (Dice >= 0.99, vCDR within 0.01, fovea
within 2 px, probability within 0.01).

Photographs: the shared real sets when present (``--data``, default ``../shared/data``: Drishti-GS1
training, RIM-ONE DL crops, DRIVE training), else synthetic photographs; always
``skimage.data.retina()``.

Usage::

    python benchmarks/backends.py                    # about 50 real photographs
    python benchmarks/backends.py --per-set 4 --small 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_flags

#: (name, extra predict options); the first is the reference.
BACKENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("onnx fp32", ("--backend", "onnx")),
    ("openvino fp32", ("--backend", "openvino", "--precision", "fp32")),
    ("openvino bf16", ("--backend", "openvino", "--precision", "bf16")),
    ("auto", ()),
)
LIMITS = {"dice": 0.99, "vcdr": 0.01, "fovea_px": 2.0, "probability": 0.01}


def shared_photos(data: Path) -> dict[str, list[Path]]:
    """The photographs of each shared real set in ``data`` (sorted; empty lists where absent)."""
    return {
        "drishti": sorted((data / "drishti-gs1" / "training" / "images").glob("*.jpg")),
        "rimone": sorted((data / "rim-one-dl").rglob("partitioned_randomly/training_set/*/*.png")),
        "drive": sorted((data / "drive" / "training" / "images").glob("*.png")),
        "chase": sorted((data / "chase_db1").glob("Image_*.jpg")),
    }


def link_photos(folder: Path, data: Path, per_set: int, sets: tuple[str, ...]) -> int:
    """Write ``retina.jpg`` (``skimage.data.retina()``) in ``folder`` and link ``SET-NAME`` to every
    k-th of ``per_set`` photographs of each of ``sets``; returns how many were linked."""
    from skimage.data import retina

    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "retina.jpg"), cv2.cvtColor(retina(), cv2.COLOR_RGB2BGR))
    found = 0
    for name, files in shared_photos(data).items():
        if name not in sets:
            continue
        step = max(1, len(files) // per_set)
        for path in files[::step][:per_set]:
            (folder / f"{name}-{path.name}").symlink_to(path.resolve())
            found += 1
    return found


def collect_photos(folder: Path, data: Path, per_set: int) -> Path:
    """Symlinks to ``per_set`` photographs of Drishti-GS1, RIM-ONE DL and DRIVE (every k-th) +
    retina; synthetic photographs where the shared sets are absent."""
    if not link_photos(folder, data, per_set, ("drishti", "rimone", "drive")):
        from funduskit.synthetic import generate_dataset

        generate_dataset(folder.parent / "synthetic", per_set, 11, scale=0.5)
        for path in sorted((folder.parent / "synthetic" / "Images").iterdir()):
            (folder / path.name).symlink_to(path.resolve())
    return folder


def predict(photos: list[Path], out: Path, options: tuple[str, ...], models: Path | None) -> tuple[float, str]:
    """``funduskit predict`` in a subprocess; its wall seconds and runtime in words."""
    folder = out.parent / f"{out.name}-in"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).symlink_to(photo.resolve())
    command = [sys.executable, "-m", "funduskit", "predict", str(folder), "--out", str(out), "--quiet", *options,
               *(["--models", str(models)] if models else [])]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - started
    return seconds, json.loads((out / "predict.json").read_text())["runtime"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


def photo_differences(reference: Path, other: Path) -> list[dict[str, object]]:
    """Per answered photograph of both output folders: its name, disc and cup Dice between the two
    submission masks, vCDR difference, fovea distance (pixels and fraction of the photograph's width)
    and both glaucoma probabilities (None where either folder has no such answer)."""
    found: list[dict[str, object]] = []
    for record_path in sorted((reference / "results").glob("*.json")):
        first = json.loads(record_path.read_text())
        second = json.loads((other / "results" / record_path.name).read_text())
        if first["status"] != "ok" or first.get("mask_file") is None or second.get("mask_file") is None:
            continue
        mask_a = cv2.imread(str(reference / first["mask_file"]), cv2.IMREAD_GRAYSCALE)
        mask_b = cv2.imread(str(other / second["mask_file"]), cv2.IMREAD_GRAYSCALE)
        row: dict[str, object] = {"name": record_path.stem, "disc": dice(mask_a < 255, mask_b < 255),
                                  "cup": dice(mask_a == 0, mask_b == 0), "vcdr": None, "fovea_px": None,
                                  "fovea_fraction": None, "probabilities": None}
        if first["vcdr"] is not None and second["vcdr"] is not None:
            row["vcdr"] = abs(first["vcdr"] - second["vcdr"])
        if first["fovea_x"] is not None and second["fovea_x"] is not None:
            distance = float(np.hypot(first["fovea_x"] - second["fovea_x"], first["fovea_y"] - second["fovea_y"]))
            row.update(fovea_px=distance, fovea_fraction=distance / first["width"])
        if first["glaucoma_probability"] is not None and second["glaucoma_probability"] is not None:
            row["probabilities"] = (first["glaucoma_probability"], second["glaucoma_probability"])
        found.append(row)
    return found


def agreement(reference: Path, other: Path) -> dict[str, list[float]]:
    """Per-photograph differences between two output folders (answered photographs of both), by measure."""
    rows = photo_differences(reference, other)
    found: dict[str, list[float]] = {key: [float(row[key]) for row in rows if row[key] is not None]
                                     for key in ("disc", "cup", "vcdr", "fovea_px")}
    found["probability"] = [abs(row["probabilities"][0] - row["probabilities"][1])
                            for row in rows if row["probabilities"] is not None]
    return found


def worst(values: list[float], key: str) -> tuple[float, bool]:
    if not values:
        return float("nan"), True
    if key in ("disc", "cup"):
        value = min(values)
        return value, value >= LIMITS["dice"]
    value = max(values)
    return value, value <= LIMITS[key]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--per-set", type=int, default=16)
    parser.add_argument("--small", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = sorted(collect_photos(work / "photos", args.data, args.per_set).iterdir())
        rows, outs = [], {}
        for name, options in BACKENDS:
            slug = name.replace(" ", "-")
            small_seconds, _ = predict(photos[: args.small], work / f"{slug}-small", options, args.models)
            seconds, runtime = predict(photos, work / slug, options, args.models)
            outs[name] = work / slug
            per_photo = (seconds - small_seconds) / (len(photos) - args.small)
            rows.append((name, runtime, seconds, per_photo))
        reference = rows[0][3]
        print(f"Backends on {len(photos)} photographs ({'models ' + str(args.models) if args.models else 'starter models'}; "
              f"{'shared real sets + retina' if any('-' in p.name for p in photos) else 'synthetic + retina'}); "
              f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores\n")
        print("| backend | runtime | s / photo (marginal) | x onnx fp32 | disc Dice worst | cup Dice worst "
              "| vCDR diff max | fovea px max | probability diff max | within limits |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, runtime, _, per_photo in rows:
            found = agreement(outs[BACKENDS[0][0]], outs[name])
            checks = {key: worst(found[key], key) for key in found}
            within = all(ok for _, ok in checks.values())
            cells = " | ".join(f"{checks[key][0]:.4f}" if key in ("disc", "cup", "vcdr", "probability")
                               else f"{checks[key][0]:.2f}" for key in ("disc", "cup", "vcdr", "fovea_px", "probability"))
            print(f"| {name} | {runtime} | {per_photo:.3f} | {reference / per_photo:.2f} | {cells} | "
                  f"{'yes' if within else 'no'} ({len(found['disc'])} photos) |")
    print(f"\nlimits: Dice >= {LIMITS['dice']}, vCDR within {LIMITS['vcdr']}, fovea within {LIMITS['fovea_px']} px, "
          f"probability within {LIMITS['probability']}")
    print(f"command: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
