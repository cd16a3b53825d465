"""Quality-gate calibration: how often each controlled degradation is caught, and how often clean
real photographs are wrongly rejected (docs/quality.md).

Clean photographs: the shared real sets (DRIVE training, CHASE_DB1, Drishti-GS1 training whole
photographs; RIM-ONE DL disc crops) and ``skimage.data.retina()``. Each is degraded in controlled
ways at three strengths (mild, moderate, severe), the strengths relative to the field of view's
diameter D so that every camera gets the same degradation:

- blur: Gaussian, sigma = D / 512 x (1.5, 3, 6) (the augmentation's own GaussianBlur, at fixed sigma);
- dark: brightness x (0.5, 0.3, 0.12); bright: the retina's mean level raised to (0.6, 0.72, 0.85), clipped;
- glare: a saturated white disc covering (3, 10, 25) % of the field of view;
- haze: blended with light grey at (0.35, 0.55, 0.8);
- shift: the photograph moved by (0.3, 0.5, 0.7) x D (part of the field of view leaves the frame);
- not fundus: scikit-image's sample pictures (astronaut, coffee, chelsea, camera, rocket, ...),
  uniform grey strips and noise (one strength).

Each photograph's measures (``funduskit.inference.quality.measure_image``, the image measures;
the disc confidence needs the models and is left out here) and its content measure
(``funduskit.inference.fundus_content``: Lite0's ImageNet probability on the fundus classes) are
graded with the package's thresholds. The fundus classes were ranked on these very photographs, so
a photograph's content measure here uses the classes ranked *without its own set* (leave one set
out: DRIVE, CHASE_DB1, Drishti-GS1, RIM-ONE DL, retina()), as a camera the package has never seen
would get. Printed: per set the share of clean photographs rejected, per degradation and strength
the share rejected (caught) and the share not graded good; ``--content`` adds the classes ranked
on every set (the package's ``FUNDUS_CLASSES``) and the content measure's percentiles.

Usage::

    python benchmarks/quality.py                   # the table (a few minutes on 2 cores)
    python benchmarks/quality.py --distributions   # each measure's percentiles, clean vs severe
    python benchmarks/quality.py --content         # the fundus classes and the content measure
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from funduskit.data.io import find_fov, frame_fov, load_image  # noqa: E402
from funduskit.data.view import detect_view  # noqa: E402
from funduskit.inference.fundus_content import FUNDUS_CLASSES, FundusContent, fundus_classes  # noqa: E402
from funduskit.inference.quality import QualityMeasures, grade_measures, measure_image  # noqa: E402
from funduskit.tools.starter_models import SHARED_DATA_SETS  # noqa: E402
from funduskit.transforms.degrade import DEGRADATIONS, STRENGTHS  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
WORKING_DIAMETER = 1024  # photographs are brought to this field-of-view diameter before degrading


def not_fundus() -> Iterator[tuple[str, np.ndarray]]:
    """Pictures that are not fundus photographs."""
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "camera", "moon", "page", "coins", "text", "horse"):
        picture = getattr(data, name)()
        if picture.dtype == bool:
            picture = picture.astype(np.uint8) * 255
        if picture.ndim == 2:
            picture = np.stack([picture] * 3, axis=-1)
        yield name, np.ascontiguousarray(picture[..., :3]).astype(np.uint8)
    yield "grey-strip-200x4000", np.full((200, 4000, 3), 128, np.uint8)
    yield "grey-square", np.full((800, 800, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    yield "noise", rng.integers(0, 256, (800, 800, 3), dtype=np.uint8)
    yield "black", np.zeros((800, 800, 3), np.uint8)
    yield "white", np.full((800, 800, 3), 255, np.uint8)


def clean_photographs(data_root: Path, limit: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """(set, name, image) of the clean real photographs, brought to WORKING_DIAMETER."""
    from skimage import data

    from funduskit.training.train import read_training_data

    yield "retina()", "retina", data.retina()[..., :3]
    for key in ("drive", "chase", "drishti", "rimone"):
        folder = data_root / SHARED_DATA_SETS[key]
        if not folder.is_dir():
            continue
        samples = read_training_data([folder])
        step = max(1, len(samples) // limit)
        for sample in samples[::step][:limit]:
            yield key, sample.image_id, load_image(sample.image_path)


def working_copy(image: np.ndarray) -> tuple[np.ndarray, str, float]:
    """The image resized to the working field-of-view diameter, its view and that diameter."""
    view = detect_view(image).view
    fov = find_fov(image) if view == "whole" else frame_fov(image.shape)
    diameter = 2 * fov.radius if view == "whole" else max(image.shape[:2])
    scale = min(1.0, WORKING_DIAMETER / diameter)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image, view, diameter * scale


Row = tuple[str, str, str, QualityMeasures, str, np.ndarray]  # (set, degradation, strength, measures, view, ImageNet probabilities)


def measured(image: np.ndarray, content: FundusContent) -> tuple[QualityMeasures, str, np.ndarray]:
    """The image measures, the view and Lite0's (1000,) ImageNet probabilities of a picture."""
    view = detect_view(image).view
    measures = measure_image(image, find_fov(image) if view == "whole" else frame_fov(image.shape), view)
    return measures, view, content.probabilities(image)


def with_held_out_content(rows: Sequence[Row]) -> list[Row]:
    """Each row's measures with its content measure, the fundus classes ranked on the clean and
    severely degraded photographs of the *other* sets (not-fundus pictures: on all of them)."""
    fundus = [(set_name, probabilities) for set_name, degradation, strength, _, _, probabilities in rows
              if degradation != "not fundus" and strength in ("-", "severe")]
    classes = {held: fundus_classes(np.stack([p for name, p in fundus if name != held]))
               for held in {name for name, _ in fundus} | {"other"}}
    return [(set_name, degradation, strength,
             replace(measures, fundus_likeness=float(probabilities[list(classes[set_name])].sum())), view, probabilities)
            for set_name, degradation, strength, measures, view, probabilities in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=60, help="photographs per set (default 60)")
    parser.add_argument("--distributions", action="store_true", help="print each measure's percentiles")
    parser.add_argument("--content", action="store_true", help="print the fundus classes and the content measure")
    args = parser.parse_args(argv)

    content = FundusContent()
    rows: list[Row] = []
    for set_name, _, photo in clean_photographs(args.data, args.limit):
        image, view, diameter = working_copy(photo)
        rows.append((set_name, "clean", "-", *measured(image, content)))
        for name, degrade in DEGRADATIONS.items():
            if name == "shift" and view != "whole":
                continue  # a disc crop has no field of view to move out of the frame
            for k, strength in enumerate(STRENGTHS):
                rows.append((set_name, name, strength, *measured(degrade(image, diameter, k), content)))
    for name, picture in not_fundus():
        rows.append(("other", "not fundus", name, *measured(picture, content)))
    rows = with_held_out_content(rows)

    if args.distributions:
        print_distributions(rows)
    if args.content:
        print_content(rows)
    print_table(rows)
    return 0


def print_content(rows: Sequence[Row]) -> None:
    """The classes ranked on every set against the package's, and the content measure by group."""
    ranked = fundus_classes(np.stack([p for _, d, s, _, _, p in rows if d != "not fundus" and s in ("-", "severe")]))
    print(f"\nfundus classes ranked on every set: {ranked}")
    print(f"the package's FUNDUS_CLASSES {'are the same' if ranked == FUNDUS_CLASSES else 'differ'}")
    print("\ncontent measure (classes ranked without the photograph's own set): min / 1 / 5 / 50 percentiles")
    for degradation in ("clean", *DEGRADATIONS):
        values = np.array([m.fundus_likeness for _, d, _, m, _, _ in rows if d == degradation])
        if len(values):
            print(f"  {degradation:8s} " + " ".join(f"{v:.3f}" for v in (values.min(), *np.percentile(values, [1, 5, 50]))))
    print("  not fundus: " + ", ".join(f"{s} {m.fundus_likeness:.3f}" for _, d, s, m, _, _ in rows if d == "not fundus"))


def print_table(rows: Sequence[Row]) -> None:
    print(f"\nQuality gate on clean and degraded photographs (CPU flags: {cpu_flags()}; "
          f"{os.cpu_count()} cores)\n")
    print("| photographs | degradation | strength | n | rejected | not good | most common reason |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    groups: dict[tuple[str, str, str], list[tuple[QualityMeasures, str]]] = {}
    for set_name, degradation, strength, measures, view, _ in rows:
        key = (set_name if degradation == "clean" else "all real", degradation,
               "-" if degradation == "not fundus" else strength)
        groups.setdefault(key, []).append((measures, view))
    for (set_name, degradation, strength), items in groups.items():
        grades = [grade_measures(m, view) for m, view in items]
        rejected = sum(g.grade == "reject" for g in grades) / len(grades)
        not_good = sum(g.grade != "good" for g in grades) / len(grades)
        reasons: dict[str, int] = {}
        for g in grades:
            for reason in g.reasons[:1]:
                reasons[reason] = reasons.get(reason, 0) + 1
        common = max(reasons, key=reasons.get) if reasons else ""
        print(f"| {set_name} | {degradation} | {strength} | {len(items)} | {100 * rejected:.1f} % | "
              f"{100 * not_good:.1f} % | {common} |")


def print_distributions(rows: Sequence[Row]) -> None:
    names = [name for name in QualityMeasures.__dataclass_fields__ if name != "disc_confidence"]
    for label, keep in (("clean", lambda d, s: d == "clean"), ("severe", lambda d, s: s == "severe"),
                        ("not fundus", lambda d, s: d == "not fundus")):
        print(f"\n{label}: percentiles 1 / 5 / 50 / 95 / 99")
        chosen = [m for _, d, s, m, _, _ in rows if keep(d, s)]
        for name in names:
            values = np.array([getattr(m, name) for m in chosen])
            print(f"  {name:14s} " + " ".join(f"{v:8.4f}" for v in np.percentile(values, [1, 5, 50, 95, 99])))
        if label == "severe":
            for degradation in DEGRADATIONS:
                picked = [m for _, d, s, m, _, _ in rows if d == degradation and s == "severe"]
                if picked:
                    print(f"  [{degradation}] " + ", ".join(
                        f"{name} {np.median([getattr(m, name) for m in picked]):.4f}" for name in names))


if __name__ == "__main__":
    raise SystemExit(main())
