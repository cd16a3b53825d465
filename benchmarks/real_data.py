"""Real-data benchmark: the ``real`` preset's recipes, cross-validated on the shared real sets.

Trains every row (a task, its data, a recipe: each technique tried is a row) on the folds asked
for, scores each fold's best checkpoint on that fold's validation images, and prints one table:
task, data, recipe, folds, metric mean +/- sd over the folds, minutes of training per fold. The
figures in docs/real-data.md come from it.

Data: ``../shared/data`` from the project root (``--data`` to point elsewhere), in the layouts of
its README (DRIVE training, CHASE_DB1, Drishti-GS1 training, RIM-ONE DL). When it is absent the
benchmark says so and exits 0: the sets are research-use and never part of the repository.

Scores, on each fold's validation images:

- vessels: ROC AUC and Dice (probability >= 0.5) over the pixels inside the field of view, at
  the photograph's own size (the usual DRIVE / CHASE_DB1 protocol);
- disc / cup on crops: Dice at the crop's own size (:func:`funduskit.training.evaluate_checkpoint`);
- disc / cup on whole photographs: the whole prediction path (:class:`funduskit.inference.Predictor`,
  threshold 0.5, post-processing), per photograph disc and cup Dice against the reference and the
  absolute vCDR error: the report's single stage, and the two-stage path (disc found on the whole
  photograph, disc and cup segmented on the crop around it);
- glaucoma: ROC AUC of the classifier's probability; and of its combination with the vCDR that the
  fold's disc and cup crop networks measure (a logistic model, ``funduskit.inference.glaucoma_combiner``,
  fitted and scored by 5-fold cross-validation inside the validation fold: what ``funduskit tune``
  does with a labelled calibration set).

Every run directory is kept under ``--out`` (default ``runs/real-data``): a finished fold is read
back, an interrupted one resumed from its ``last.pt``. So the benchmark is run again, as often as
needed, until every row is done; ``--rows`` picks rows, ``--run-folds`` folds.

Usage::

    python benchmarks/real_data.py                          # every row, folds 0-4 (hours on 2 cores)
    python benchmarks/real_data.py --run-folds 0,1 --rows glaucoma-lite0,vessel-drive
    python benchmarks/real_data.py --table-only             # the table of what is done
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
from funduskit.runs.layout import SCORES_FILE  # noqa: E402
from funduskit.tools.starter_models import SHARED_DATA_SETS as DATA_SETS  # noqa: E402 - key -> folder under --data
from funduskit.tools.starter_models import run_finished, starter_by_row  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One recipe on one data set.

    ``evaluation``: ``"vessel"``, ``"crop"`` (disc / cup Dice on the crops), ``"classifier"`` or
    ``"pipeline"`` (whole photographs through the predictor, with the runs of the rows in ``uses``)
    or ``"combiner"`` (crops through the predictor; the classifier and the measured vCDR combined).
    A ``"vessel"`` row with ``uses`` scores that row's run again (with ``tta``: test-time flips).
    """

    name: str
    task: str
    data: tuple[str, ...]
    recipe: str
    arguments: tuple[str, ...] = ()
    evaluation: str = "crop"
    uses: tuple[str, ...] = ()
    preset: str = "real"
    metrics: tuple[str, ...] = field(default=())
    tta: bool = False  # rows with ``uses``: predict with horizontal-flip test-time augmentation

    @property
    def trains(self) -> bool:
        """False for a row that scores the runs of the rows in ``uses`` instead of training its own."""
        return not self.uses


# The rows of the starter models' recipes take their options from funduskit.tools.starter_models
# (the one home of those recipes; docs/starter-models.md quotes these rows' figures).
ROWS: tuple[Row, ...] = (
    # vessels ------------------------------------------------------------------------------
    Row("vessel-drive-cpu", "vessel", ("drive",), "cpu preset, 384 px squash, 60 epochs (the issue's baseline)",
        ("--epochs", "60"), "vessel", preset="cpu", metrics=("auc", "dice")),
    Row("vessel-drive", "vessel", ("drive",), "real: U-Net 16 at 576 px (DRIVE's own size), GAN + Dice",
        (), "vessel", metrics=("auc", "dice")),
    Row("vessel-drive-clahe", "vessel", ("drive",), "real, CLAHE on the lightness before standardising",
        ("--set", "data.preprocessing=clahe"), "vessel", metrics=("auc", "dice")),
    Row("vessel-drive-patches", "vessel", ("drive",),
        "real, CLAHE, random 192 px patches of the 576 px image (8 an image an epoch, batch 8), 50 epochs",
        ("--set", "data.preprocessing=clahe", "--set", "data.patch_size=192", "--set", "data.patches_per_image=8",
         "--set", "batch_size=8", "--epochs", "50", "--set", "scheduler.patience=6"),
        "vessel", metrics=("auc", "dice")),
    Row("vessel-drive-patches-bce", "vessel", ("drive",),
        "the same with V-GAN's own loss (pixel BCE + 0.1 adversarial, no Dice term: Dice pushes maps to "
        "0 / 1, which ranks thin vessels worse) and the light augmentation, plateau patience 10, 55 epochs",
        ("--set", "data.preprocessing=clahe", "--set", "data.patch_size=192", "--set", "data.patches_per_image=8",
         "--set", "batch_size=8", "--epochs", "55", "--set", "scheduler.patience=10",
         "--set", "data.augmentation=light", "--set", "loss.kwargs.dice_weight=0.0"),
        "vessel", metrics=("auc", "dice")),
    Row("vessel-drive-patches-bce-adv02", "vessel", ("drive",),
        "the same with a fifth of the adversarial weight (0.02): the discriminator's term grew and the "
        "validation Dice fell after epoch 31 at 0.1",
        ("--set", "data.preprocessing=clahe", "--set", "data.patch_size=192", "--set", "data.patches_per_image=8",
         "--set", "batch_size=8", "--epochs", "55", "--set", "scheduler.patience=10",
         "--set", "data.augmentation=light", "--set", "loss.kwargs.dice_weight=0.0",
         "--set", "loss.kwargs.adversarial_weight=0.02"),
        "vessel", metrics=("auc", "dice")),
    Row("vessel-drive-patches-bce-adv02-tta", "vessel", ("drive",),
        "the adversarial-0.02 network with test-time flips (its map averaged with the flipped photograph's; predict --tta does not, see decisions)",
        evaluation="vessel", uses=("vessel-drive-patches-bce-adv02",), tta=True, metrics=("auc", "dice")),
    Row("vessel-drive+chase-patches-adv02", "vessel", ("drive", "chase"),
        "the adversarial-0.02 patch recipe on DRIVE + CHASE_DB1 together, 28 epochs (the steps of 55 on DRIVE alone): the starter vessel network",
        starter_by_row("vessel-drive+chase-patches-adv02").arguments,
        "vessel", metrics=("auc_drive", "dice_drive", "auc_chase", "dice_chase")),
    Row("vessel-drive+chase", "vessel", ("drive", "chase"),
        "real, DRIVE + CHASE_DB1 together, 20 epochs (as many steps as 40 on DRIVE alone; the starter vessel network until 2026-12-04)",
        ("--epochs", "20"), "vessel", metrics=("auc_drive", "dice_drive", "auc_chase", "dice_chase")),
    # glaucoma -----------------------------------------------------------------------------
    Row("glaucoma-lite0", "glaucoma", ("rimone",), "real: ImageNet Lite0 on the crops, 256 px",
        starter_by_row("glaucoma-lite0").arguments, "classifier", metrics=("auroc",)),
    Row("glaucoma-lite0+vcdr", "glaucoma", ("rimone",),
        "classifier + vCDR measured by disc-rimone / cup-rimone, logistic combiner (5-fold CV inside the fold)",
        evaluation="combiner", uses=("glaucoma-lite0", "disc-rimone", "cup-rimone"),
        metrics=("auroc", "classifier_auroc", "vcdr_auroc", "disc_dice", "cup_dice")),
    Row("glaucoma-lite0+vcdr-tta", "glaucoma", ("rimone",), "the same with test-time flips (predict --tta)",
        evaluation="combiner", uses=("glaucoma-lite0", "disc-rimone", "cup-rimone"), tta=True,
        metrics=("auroc", "classifier_auroc", "vcdr_auroc", "disc_dice", "cup_dice")),
    Row("glaucoma-random-init", "glaucoma", ("rimone",), "real recipe from random weights",
        ("--set", "init.encoder_weights=null"), "classifier", metrics=("auroc",)),
    # disc / cup on RIM-ONE crops ------------------------------------------------------------
    # 271 training crops: 12 epochs are as many steps as 80 on Drishti-GS1's 40 photographs
    Row("disc-rimone", "disc", ("rimone",), "real: Lite0 U-Net on the crops, 256 px, 12 epochs",
        ("--epochs", "12"), "crop", metrics=("dice",)),
    Row("cup-rimone", "cup", ("rimone",), "real: Lite0 U-Net on the crops, 256 px, 12 epochs",
        ("--epochs", "12"), "crop", metrics=("dice",)),
    Row("cup-rimone-24", "cup", ("rimone",), "real, 24 epochs (the 12-epoch curve was still rising)",
        ("--epochs", "24"), "crop", metrics=("dice",)),
    Row("cup-rimone-lite2", "cup", ("rimone",),
        "real with the ImageNet Lite2 photo encoder (Lite0's is the real preset's), 12 epochs; the cup is "
        "already 114-171 px tall at 256 (10th-90th percentile of 40 crops), so a larger input was not the first try",
        ("--epochs", "12", "--set", "model.kwargs.photo_encoder=tf_efficientnet_lite2",
         "--set", "init.encoder_weights=lite2"), "crop", metrics=("dice",)),
    # both crop sets in one run: the starter crop networks ---------------------------------------
    Row("disc-crop-drishti+rimone", "disc", ("drishti", "rimone"),
        "real, RIM-ONE crops + Drishti-GS1 cut around the reference disc, one run, 12 epochs",
        starter_by_row("disc-crop-drishti+rimone").arguments, "crop", metrics=("dice_drishti", "dice_rimone")),
    Row("cup-crop-drishti+rimone", "cup", ("drishti", "rimone"),
        "real, RIM-ONE crops + Drishti-GS1 cut around the reference disc, one run, 24 epochs",
        starter_by_row("cup-crop-drishti+rimone").arguments, "crop", metrics=("dice_drishti", "dice_rimone")),
    # disc / cup on Drishti-GS1 whole photographs -------------------------------------------
    Row("disc-drishti-whole", "disc", ("drishti",), "real, whole photograph at 384 px (single stage; stage 1)",
        starter_by_row("disc-drishti-whole").arguments, "crop", metrics=("dice",)),
    Row("cup-drishti-whole", "cup", ("drishti",), "real, whole photograph at 512 px (single stage)",
        ("--view", "whole", "--input-size", "512"), "crop", metrics=("dice",)),
    Row("disc-drishti-crop", "disc", ("drishti",), "real, crop around the reference disc, 256 px",
        (), "crop", metrics=("dice",)),
    Row("cup-drishti-crop", "cup", ("drishti",), "real, crop around the reference disc, 256 px",
        (), "crop", metrics=("dice",)),
    Row("drishti-single-stage", "disc+cup", ("drishti",), "the report's single stage: whole-photo disc + cup",
        evaluation="pipeline", uses=("disc-drishti-whole", "cup-drishti-whole"),
        metrics=("disc_dice", "cup_dice", "vcdr_error")),
    Row("drishti-two-stage", "disc+cup", ("drishti",), "two stages: whole-photo disc -> crop -> crop disc + cup",
        evaluation="pipeline", uses=("disc-drishti-whole", "disc-drishti-crop", "cup-drishti-crop"),
        metrics=("disc_dice", "cup_dice", "vcdr_error")),
    Row("starter-two-stage", "disc+cup", ("drishti",),
        "the starter set: whole-photo disc -> crop networks trained on both crop sets",
        evaluation="pipeline", uses=("disc-drishti-whole", "disc-crop-drishti+rimone", "cup-crop-drishti+rimone"),
        metrics=("disc_dice", "cup_dice", "vcdr_error")),
    Row("drishti-two-stage-tta", "disc+cup", ("drishti",), "two stages with test-time flips (predict --tta)",
        evaluation="pipeline", uses=("disc-drishti-whole", "disc-drishti-crop", "cup-drishti-crop"), tta=True,
        metrics=("disc_dice", "cup_dice", "vcdr_error")),
)

TARGETS = {  # (row prefix, metric) -> (direction, bar) from the issue
    ("vessel", "auc"): (">=", 0.98), ("vessel", "dice"): (">=", 0.81),
    **{("vessel", f"{metric}_{key}"): (">=", bar) for metric, bar in (("auc", 0.98), ("dice", 0.81))
       for key in ("drive", "chase")},
    ("glaucoma", "auroc"): (">=", 0.92),
    ("disc-rimone", "dice"): (">=", 0.95), ("cup-rimone", "dice"): (">=", 0.85),
    ("disc-crop", "dice_rimone"): (">=", 0.95), ("cup-crop", "dice_rimone"): (">=", 0.85),
    ("drishti", "disc_dice"): (">=", 0.96), ("drishti", "cup_dice"): (">=", 0.88),
    ("drishti", "vcdr_error"): ("<=", 0.06),
    ("starter", "disc_dice"): (">=", 0.96), ("starter", "cup_dice"): (">=", 0.88),
    ("starter", "vcdr_error"): ("<=", 0.06),
}


# Training ---------------------------------------------------------------------------------

def fold_dir(out: Path, row: Row, fold: int) -> Path:
    return out / row.name / f"fold{fold}"


def train_fold(row: Row, fold: int, folds: int, data_root: Path, out: Path, *, quiet: bool) -> Path:
    """Train (or resume, or keep) one fold of a row; returns its run directory."""
    run_dir = fold_dir(out, row, fold)
    if (run_dir / SCORES_FILE).is_file():
        return run_dir
    command = [sys.executable, "-m", "funduskit", "train", row.task, "--preset", row.preset,
               "--folds", str(folds), "--fold", str(fold), *row.arguments]
    for key in row.data:
        command += ["--data", str(data_root / DATA_SETS[key])]
    if (run_dir / "last.pt").is_file():
        command += ["--resume", str(run_dir)]
    else:
        command += ["--out", str(run_dir)]
    if quiet:
        command.append("--quiet")
    print(f"[{row.name} fold {fold}] {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return run_dir


def training_minutes(run_dir: Path) -> float:
    """Training + validation time of a run (its metrics.csv), minutes."""
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sum(float(r.get("train_seconds") or 0) + float(r.get("val_seconds") or 0) for r in rows) / 60


# Scoring ----------------------------------------------------------------------------------

def validation_samples(run_dir: Path, data_root: Path, data: Sequence[str], *, only: str | None = None) -> list:
    """The samples of a run's validation fold (its split.csv); ``only``: those of one of its sets."""
    from funduskit.training import read_split
    from funduskit.training.train import read_training_data

    samples = read_training_data([data_root / DATA_SETS[key] for key in data])
    validation = read_split(run_dir / "split.csv").select(samples, "validation")
    if only is None:
        return validation
    of_set = {sample.image_id for sample in read_training_data([data_root / DATA_SETS[only]])}
    return [sample for sample in validation if sample.image_id in of_set]


def score_vessels_again(run_dirs: Sequence[Path], samples: Sequence, *, tta: bool = False) -> dict[str, float]:
    """:func:`score_vessel` of the one run a ``uses`` row names."""
    [run_dir] = run_dirs
    return score_vessel(run_dir, samples, tta=tta)


def score_vessel(run_dir: Path, samples: Sequence, *, tta: bool = False) -> dict[str, float]:
    """Mean over photographs of ROC AUC and Dice inside the field of view, at the original size;
    with ``tta``, of the probability averaged with the horizontally flipped photograph's."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from funduskit.data.datasets import load_vessel_mask
    from funduskit.data.io import find_fov, load_image
    from funduskit.inference.predictor import network_input
    from funduskit.runs.networks import load_trained_model
    from funduskit.scoring.metrics import dice
    from funduskit.transforms.preprocess import Geometry

    model, config = load_trained_model(run_dir / "best.pt")
    model.eval()
    aucs, dices = [], []
    for sample in samples:
        image = load_image(sample.image_path)
        geometry = Geometry.for_image(image, config.data.input_size)
        x = torch.from_numpy(network_input(image, config.data.preprocessing, config.data.input_size)).permute(2, 0, 1)[None]
        with torch.inference_mode():
            probability = model.predict(x)[0, 0].numpy()
            if tta:
                probability = (probability + model.predict(x.flip(-1))[0, 0].flip(-1).numpy()) / 2
        probability = geometry.map_to_original(probability)
        inside = _fov_mask(sample, image, find_fov)
        reference = load_vessel_mask(sample)
        aucs.append(roc_auc_score(reference[inside], probability[inside]))
        dices.append(dice((probability >= 0.5) & inside, reference & inside))
    return {"auc": float(np.mean(aucs)), "dice": float(np.mean(dices))}


def _fov_mask(sample, image, find_fov: Callable):
    """The data set's field-of-view mask (DRIVE ships one), else the fitted circle (CHASE_DB1)."""
    import cv2

    path = sample.extra.get("fov_mask_path")
    if path:
        return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127
    return find_fov(image).mask(image.shape)


def score_crop(run_dir: Path, samples: Sequence) -> dict[str, float]:
    from funduskit.training.validation import evaluate_checkpoint

    record = evaluate_checkpoint(run_dir, samples, threads=2, original_size=True)
    return {"dice": float(record["dice_original_size"])}


def score_classifier(run_dir: Path, samples: Sequence) -> dict[str, float]:
    from funduskit.training.validation import evaluate_checkpoint

    return {"auroc": float(evaluate_checkpoint(run_dir, samples, threads=2)["val_auroc"])}


def score_pipeline(run_dirs: Sequence[Path], samples: Sequence, *, tta: bool = False) -> dict[str, float]:
    """Whole photographs through the predictor built from ``run_dirs``: disc / cup Dice, vCDR error."""
    import numpy as np

    from funduskit.data.datasets import load_disc_cup_mask
    from funduskit.data.io import load_image
    from funduskit.scoring.metrics import cup_of, dice, disc_of, vertical_cdr

    predictor = _predictor(run_dirs, tta=tta)
    scores: dict[str, list[float]] = {"disc_dice": [], "cup_dice": [], "vcdr_error": []}
    for sample in samples:
        [prediction] = predictor.predict([load_image(sample.image_path)], views=["whole"])
        reference = load_disc_cup_mask(sample)
        scores["disc_dice"].append(dice(disc_of(prediction.mask), disc_of(reference)))
        scores["cup_dice"].append(dice(cup_of(prediction.mask), cup_of(reference)))
        scores["vcdr_error"].append(abs(vertical_cdr(prediction.mask) - vertical_cdr(reference)))
    return {key: float(np.mean(values)) for key, values in scores.items()}


def score_combiner(run_dirs: Sequence[Path], samples: Sequence, *, tta: bool = False) -> dict[str, float]:
    """Crops through the predictor: AUROC of the classifier, of the measured vCDR, and of their
    logistic combination (out-of-fold over a 5-fold split of ``samples``); the post-processed
    disc and cup Dice on the crops."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from funduskit.data.datasets import load_disc_cup_mask
    from funduskit.data.io import load_image
    from funduskit.inference.glaucoma_combiner import fit_combiner
    from funduskit.scoring.metrics import auroc, cup_of, dice, disc_of, vertical_cdr

    predictor = _predictor(run_dirs, tta=tta)
    classifier, vcdr, labels, disc_dice, cup_dice = [], [], [], [], []
    for sample in samples:
        [prediction] = predictor.predict([load_image(sample.image_path)], views=["disc"])
        classifier.append(prediction.glaucoma_probability)
        vcdr.append(vertical_cdr(prediction.mask))
        labels.append(int(sample.label))
        reference = load_disc_cup_mask(sample)
        disc_dice.append(dice(disc_of(prediction.mask), disc_of(reference)))
        cup_dice.append(dice(cup_of(prediction.mask), cup_of(reference)))
    combined = np.zeros(len(samples))
    splits = StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(len(labels)), labels)
    for train, test in splits:
        combiner = fit_combiner([classifier[i] for i in train], [vcdr[i] for i in train], [labels[i] for i in train])
        combined[test] = [combiner.probability(classifier[i], vcdr[i]) for i in test]
    return {"auroc": float(auroc(labels, combined)), "classifier_auroc": float(auroc(labels, classifier)),
            "vcdr_auroc": float(auroc(labels, vcdr)), "disc_dice": float(np.mean(disc_dice)),
            "cup_dice": float(np.mean(cup_dice))}


def _predictor(run_dirs: Sequence[Path], *, tta: bool = False):
    """A CPU fp32 predictor holding the networks of ``run_dirs``."""
    import torch

    from funduskit.core.config import RuntimeConfig
    from funduskit.inference.model_store import find_runs
    from funduskit.inference.predictor import Predictor
    from funduskit.runtime.device import resolve_runtime

    torch.set_num_threads(2)
    folder = Path(tempfile.mkdtemp(prefix="funduskit-real-"))
    for index, run_dir in enumerate(run_dirs):
        (folder / f"run{index}").symlink_to(run_dir.resolve())
    return Predictor.from_runs(find_runs(folder), resolve_runtime(RuntimeConfig(device="cpu", precision="fp32")),
                               tta=tta)


def score_fold(row: Row, fold: int, data_root: Path, out: Path) -> dict[str, float] | None:
    """The fold's scores (cached in scores.json); None when a run it needs is not trained yet."""
    rows = {r.name: r for r in ROWS}
    if row.trains:
        run_dir = fold_dir(out, row, fold)
        if (run_dir / SCORES_FILE).is_file():
            return json.loads((run_dir / SCORES_FILE).read_text())
        if not run_finished(run_dir):  # not trained yet, or still training
            return None
        scorer = {"vessel": score_vessel, "crop": score_crop, "classifier": score_classifier}[row.evaluation]
        scores = {"minutes": training_minutes(run_dir)}
        if len(row.data) == 1:
            scores.update(scorer(run_dir, validation_samples(run_dir, data_root, row.data)))
        else:  # one run on several sets: each set's validation photographs scored on their own
            for key in row.data:
                part = scorer(run_dir, validation_samples(run_dir, data_root, row.data, only=key))
                scores.update({f"{metric}_{key}": value for metric, value in part.items()})
        (run_dir / SCORES_FILE).write_text(json.dumps(scores, indent=1) + "\n")
        return scores
    run_dirs = [fold_dir(out, rows[name], fold) for name in row.uses]
    if not all((d / SCORES_FILE).is_file() for d in run_dirs):
        return None
    record = out / row.name / f"fold{fold}.json"
    if record.is_file():
        return json.loads(record.read_text())
    samples = validation_samples(run_dirs[0], data_root, row.data)
    scorer = {"pipeline": score_pipeline, "combiner": score_combiner, "vessel": score_vessels_again}[row.evaluation]
    scores = {**scorer(run_dirs, samples, tta=row.tta),
              "minutes": sum(json.loads((d / SCORES_FILE).read_text())["minutes"] for d in run_dirs)}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


# Table ------------------------------------------------------------------------------------

def target_text(row: Row, metric: str, mean: float) -> str:
    for (prefix, name), (direction, bar) in TARGETS.items():
        if row.name.startswith(prefix) and name == metric:
            met = mean >= bar if direction == ">=" else mean <= bar
            return f"{direction} {bar:g}: {'met' if met else 'not met'}"
    return ""


def table(rows: Sequence[Row], folds: Sequence[int], data_root: Path, out: Path) -> str:
    lines = ["| row | task | data | recipe | folds | metric | mean ± sd | target | minutes / fold |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        done = {fold: s for fold in folds if (s := score_fold(row, fold, data_root, out)) is not None}
        if not done:
            lines.append(f"| {row.name} | {row.task} | {'+'.join(row.data)} | {row.recipe} | 0 | - | not run | | |")
            continue
        minutes = statistics.mean(s["minutes"] for s in done.values())
        for metric in row.metrics:
            values = [s[metric] for s in done.values()]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            spread = f"{statistics.mean(values):.4f} ± {sd:.4f}" if len(values) > 1 else f"{values[0]:.4f}"
            lines.append(f"| {row.name} | {row.task} | {'+'.join(row.data)} | {row.recipe} | "
                         f"{','.join(map(str, done))} | {metric} | {spread} | "
                         f"{target_text(row, metric, statistics.mean(values))} | {minutes:.1f} |")
    return "\n".join(lines)


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = sorted({flag for flag in ("avx512_bf16", "avx512_vnni", "amx_bf16") if flag in text})
    return ", ".join(flags) or "AVX2 only (no avx512_bf16 / avx512_vnni / amx)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared real data (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real-data", help="run directories")
    parser.add_argument("--folds", type=int, default=5, help="folds of the cross-validation (default 5)")
    parser.add_argument("--run-folds", default=None, help="which folds to run, e.g. 0,1 (default all)")
    parser.add_argument("--rows", default=None, help="comma-separated row names (default all): " +
                        ", ".join(row.name for row in ROWS))
    parser.add_argument("--table-only", action="store_true", help="train nothing; print the table of what is done")
    parser.add_argument("--quiet", action="store_true", help="no progress bars from training")
    args = parser.parse_args(argv)

    if not args.data.is_dir():
        print(f"skipped: the real data sets are not at {args.data} (research-use sets, never part of the "
              "repository; see the shared data README)")
        return 0
    folds = [int(k) for k in args.run_folds.split(",")] if args.run_folds else list(range(args.folds))
    by_name = {row.name: row for row in ROWS}
    unknown = [name for name in (args.rows or "").split(",") if name and name not in by_name]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(by_name)}")
    rows = [by_name[name] for name in args.rows.split(",")] if args.rows else list(ROWS)
    if not args.table_only:
        for fold in folds:
            for row in rows:
                needed = [by_name[name] for name in row.uses] if not row.trains else [row]
                for part in needed:
                    train_fold(part, fold, args.folds, args.data, args.out, quiet=args.quiet)
                    score_fold(part, fold, args.data, args.out)
                score_fold(row, fold, args.data, args.out)
    print(f"\nReal-data cross-validation ({args.folds} folds; CPU: {cpu_flags()}; {os.cpu_count()} cores)\n")
    print(table(rows, folds, args.data, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
