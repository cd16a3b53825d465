"""The fast ensemble (``funduskit predict --ensemble fast``) against the full one: agreement on
real photographs that no member was trained on, and seconds per photograph, in one run.

The full ensemble is every fold the real-data benchmark has trained of the rows below
(``benchmarks/real_data.py``, run directories in ``--runs``): the two-stage disc and cup of
Drishti-GS1 (whole-photograph disc, crop disc, crop cup) and the RIM-ONE classifier, with the
starter models' vessel and fovea networks (one each, so the same in both). Each fast ensemble is
predicted with ``funduskit predict --ensemble fast``: the default rule (one member per task and
stage), and for ``--members K`` > 1 the first K of each named in the folder's ``fast.yaml``.

Agreement is scored the way REFUGE scores a submission, as means over the photographs (mean Dice of
disc and cup between the two masks, mean absolute vCDR difference, mean fovea distance as a fraction
of the photograph's width) and the glaucoma probabilities' Spearman rank correlation; the worst
photograph is shown beside. Issue 16's limits: Dice >= 0.97, vCDR within 0.02, fovea within 1 % of
the width, rank correlation >= 0.98. A photograph counts only for the measures of networks that
never saw it: Drishti-GS1 photographs for the glaucoma rank only (the disc and cup members trained on
them), RIM-ONE crops for disc, cup and vCDR only (the classifiers trained on them).

Every member is exported first (``funduskit export``), so both run on ``--backend`` (ONNX Runtime by
default), as the starter models do. Seconds per photograph are marginal: each ensemble predicts the first ``--small`` photographs and
then all of them, each in a fresh process (``benchmarks/backends.py``'s way), so loading is left out.

Usage::

    python benchmarks/fast_ensemble.py                     # about 10 minutes on 2 cores
    python benchmarks/fast_ensemble.py --members 1,2,3 --backend openvino
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from backends import link_photos, photo_differences, predict
from machine import cpu_flags

from funduskit.runs.layout import SCORES_FILE

ROOT = Path(__file__).resolve().parents[1]
#: task -> the real-data rows whose folds make the full ensemble.
ENSEMBLE_ROWS: dict[str, tuple[str, ...]] = {
    "disc": ("disc-drishti-whole", "disc-drishti-crop"),
    "cup": ("cup-drishti-crop",),
    "glaucoma": ("glaucoma-lite0",),
}
#: photograph set -> the measures it may count for (see the module doc).
MEASURES_OF_SET: dict[str, tuple[str, ...]] = {
    "drive": ("disc", "cup", "vcdr", "fovea", "glaucoma"),
    "chase": ("disc", "cup", "vcdr", "fovea", "glaucoma"),
    "retina": ("disc", "cup", "vcdr", "fovea", "glaucoma"),
    "drishti": ("glaucoma",),
    "rimone": ("disc", "cup", "vcdr"),
}
LIMITS = {"disc": 0.97, "cup": 0.97, "vcdr": 0.02, "fovea": 0.01, "glaucoma": 0.98}


def full_ensemble(runs: Path) -> dict[str, list[Path]]:
    """task -> the finished fold run directories of :data:`ENSEMBLE_ROWS` (trained and scored by
    the real-data benchmark: its ``scores.json`` is written)."""
    found = {task: [score.parent for row in rows for score in sorted((runs / row).glob(f"fold*/{SCORES_FILE}"))]
             for task, rows in ENSEMBLE_ROWS.items()}
    return {task: items for task, items in found.items() if items}


def export_ensemble(members: dict[str, list[Path]], work: Path) -> Path:
    """``funduskit export`` of the full ensemble (runs linked as ``ROW-foldK``, so that the
    exported runs keep those names); returns the exported models folder."""
    linked = work / "runs"
    linked.mkdir()
    for run_dirs in members.values():
        for run_dir in run_dirs:
            (linked / f"{run_dir.parent.name}-{run_dir.name}").symlink_to(run_dir.resolve())
    exported = work / "exported"
    subprocess.run([sys.executable, "-m", "funduskit", "export", "--models", str(linked), "--out", str(exported)],
                   check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return exported


def models_folder(folder: Path, exported: Path, fast_members: int) -> Path:
    """A models folder: ``models.yaml`` naming every exported run, and for ``fast_members`` > 1 a
    ``fast.yaml`` naming the first that many of each task and stage (the rule's order)."""
    from funduskit.inference.fast_ensemble import FAST_FILE, fast_subset
    from funduskit.inference.model_store import MANIFEST, find_runs

    runs = find_runs(exported)
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(yaml.safe_dump({task: [str(run.run_dir.resolve()) for run in items]
                                                   for task, items in runs.items()}))
    if fast_members > 1:
        chosen = fast_subset(runs, {task: fast_members for task in runs})
        (folder / FAST_FILE).write_text(yaml.safe_dump(
            {task: [str(run.run_dir.resolve()) for run in items] for task, items in chosen.items()}))
    return folder


def scores(rows: list[dict[str, object]]) -> dict[str, tuple[float, float, int]]:
    """measure -> (REFUGE-style score, worst photograph, photographs) over the rows it may count for."""
    from scipy.stats import spearmanr

    def counts(row: dict[str, object], measure: str) -> bool:
        return measure in MEASURES_OF_SET[str(row["name"]).split("-", 1)[0].split(".")[0]]  # SET-NAME.EXT

    result: dict[str, tuple[float, float, int]] = {}
    for measure, key in (("disc", "disc"), ("cup", "cup"), ("vcdr", "vcdr"), ("fovea", "fovea_fraction")):
        values = [float(row[key]) for row in rows if row[key] is not None and counts(row, measure)]
        if values:
            worst = min(values) if measure in ("disc", "cup") else max(values)
            result[measure] = (float(np.mean(values)), worst, len(values))
    pairs = [row["probabilities"] for row in rows if row["probabilities"] is not None and counts(row, "glaucoma")]
    if len(pairs) >= 3:
        first, second = np.array(pairs).T
        result["glaucoma"] = (float(spearmanr(first, second).statistic), float(np.abs(first - second).max()),
                              len(pairs))
    return result


def met(measure: str, value: float) -> bool:
    return value >= LIMITS[measure] if measure in ("disc", "cup", "glaucoma") else value <= LIMITS[measure]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "real-data",
                        help="run directories of benchmarks/real_data.py")
    parser.add_argument("--members", default="1,2", help="fast ensembles to try: members per task and stage")
    parser.add_argument("--per-set", type=int, default=20, help="photographs per held-out set")
    parser.add_argument("--small", type=int, default=6, help="photographs of the first, shorter run")
    parser.add_argument("--backend", default="onnx", help="--backend of funduskit predict (default onnx)")
    args = parser.parse_args()
    members = full_ensemble(args.runs)
    if not args.data.is_dir() or not members:
        print(f"skipped: needs the shared real sets ({args.data}) and the folds of "
              f"{', '.join(row for rows in ENSEMBLE_ROWS.values() for row in rows)} in {args.runs} "
              "(python benchmarks/real_data.py --rows drishti-two-stage,glaucoma-lite0)")
        return 0
    with tempfile.TemporaryDirectory(prefix="funduskit-fast-") as tmp:
        work = Path(tmp)
        link_photos(work / "photos", args.data, args.per_set, ("drive", "chase", "drishti", "rimone"))
        photos = sorted((work / "photos").iterdir())
        options = ("--backend", args.backend, "--quality", "off")
        configurations = [("full", 0)] + [("fast", int(k)) for k in args.members.split(",")]
        outs, seconds = {}, {}
        exported = export_ensemble(members, work)
        for ensemble, k in configurations:
            name = "full" if ensemble == "full" else f"fast-{k}"
            models = models_folder(work / f"models-{name}", exported, k)
            flags = (*options, "--ensemble", ensemble)
            small, _ = predict(photos[: args.small], work / f"{name}-small", flags, models)
            total, runtime = predict(photos, work / name, flags, models)
            outs[name], seconds[name] = work / name, (total - small) / (len(photos) - args.small)
        sizes = {task: len(items) for task, items in members.items()}
        print(f"Fast ensemble against the full one ({', '.join(f'{t} x{n}' for t, n in sizes.items())} "
              f"+ starter vessel and fovea) on {len(photos)} real photographs; {runtime}; "
              f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores\n")
        print("| ensemble | s / photo (marginal) | x full | disc Dice mean (worst) | cup Dice mean (worst) "
              "| vCDR diff mean (max) | fovea % width mean (max) | glaucoma rank corr (max prob diff) | within limits |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print(f"| full | {seconds['full']:.3f} | 1.00 | | | | | | |")
        for name in outs:
            if name == "full":
                continue
            found = scores(photo_differences(outs["full"], outs[name]))
            cells = []
            for measure in ("disc", "cup", "vcdr", "fovea", "glaucoma"):
                if measure not in found:
                    cells.append("-")
                    continue
                score, worst, count = found[measure]
                scale = 100 if measure == "fovea" else 1
                cells.append(f"{score * scale:.3f}{'' if met(measure, score) else ' (missed)'} ({worst * scale:.3f}; {count})")
            within = all(met(measure, found[measure][0]) for measure in found)
            print(f"| {name} | {seconds[name]:.3f} | {seconds['full'] / seconds[name]:.2f} | {' | '.join(cells)} | "
                  f"{'yes' if within else 'no'} |")
    print(f"\nlimits: Dice >= {LIMITS['disc']}, vCDR within {LIMITS['vcdr']}, fovea within "
          f"{LIMITS['fovea'] * 100:g} % of the width, rank correlation >= {LIMITS['glaucoma']}; cells: score "
          "(worst photograph; photographs)")
    print(f"command: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
