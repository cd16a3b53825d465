"""``funduskit tune``: the disc and cup thresholds, chosen on validation predictions.

The report chose its thresholds "through measures on the leader board". Here they are chosen on
the probability maps that ``funduskit predict --save-probabilities`` wrote for a validation set
with ground truth, with the full post-processing applied at each candidate threshold:

1. disc: the threshold maximising the mean disc Dice;
2. cup, with the disc at its chosen threshold: the threshold maximising
   ``mean cup Dice - mean vCDR absolute error``, since the REFUGE leaderboard ranks on both
   (the cup's threshold moves the vCDR, the disc's moves it far less).

Ties go to the threshold closest to 0.5. Dice and vCDR are computed at the saved maps' size (the
reference mask is resized to it, nearest neighbour); vCDR is a ratio, so the size hardly matters.

3. glaucoma, when the ground truth has labels (at least
   :data:`~funduskit.inference.glaucoma_combiner.MIN_PER_CLASS` of each class): the combiner of the
   classifiers' probability and the vCDR measured at the chosen thresholds
   (:mod:`funduskit.inference.glaucoma_combiner`), fitted on the validation photographs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.core.files import atomic_write_text
from funduskit.inference.glaucoma_combiner import (
    MIN_PER_CLASS,
    GlaucomaCombiner,
    fit_combiner,
)
from funduskit.inference.model_store import THRESHOLDS_FILE, Thresholds
from funduskit.inference.postprocess import clean_mask, merge_disc_cup
from funduskit.inference.results import (
    PROBABILITIES_DIR,
    RUN_RECORD,
    load_result,
    probability_path,
)
from funduskit.scoring.metrics import auroc, cup_of, dice, disc_of, vertical_cdr
from funduskit.scoring.submission import image_stem

#: Candidate thresholds: 0.05, 0.10, ..., 0.95.
DEFAULT_GRID: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


@dataclass
class ValidationCase:
    """One validation photograph: saved probability maps and the reference mask at their size."""

    name: str
    disc_probability: np.ndarray  # (h, w) float32
    cup_probability: np.ndarray  # (h, w) float32
    reference: np.ndarray  # (h, w) uint8 REFUGE mask
    label: int | None = None  # 1 = glaucoma, 0 = normal, None = unknown
    classifier_probability: float | None = None  # the classifiers' mean, from the prediction's record


@dataclass
class TuneResult:
    """The chosen thresholds and the scores behind them (``scores``: one row per candidate)."""

    thresholds: Thresholds
    images: int
    disc_dice: float
    cup_dice: float
    vcdr_error: float
    default_scores: dict[str, float]
    disc_curve: list[dict[str, float]] = field(default_factory=list)
    cup_curve: list[dict[str, float]] = field(default_factory=list)
    glaucoma_auroc: dict[str, float] = field(default_factory=dict)  # classifier / vcdr / combined (in-sample)
    glaucoma_note: str = ""  # why no combiner was fitted, when none was

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        del data["thresholds"]
        data.update(self.thresholds.as_dict())
        return data


def load_validation_cases(pred_dir: str | Path, gt_dir: str | Path, *, gt_format: str | None = None) -> list[ValidationCase]:
    """Pair the saved probability maps in ``pred_dir/probabilities`` with reference masks.

    Raises:
        DataError: no saved maps, or none matches a reference mask of ``gt_dir``.
    """
    from funduskit.data.datasets import load_disc_cup_mask, read_dataset

    probabilities = Path(pred_dir) / PROBABILITIES_DIR
    if not probabilities.is_dir():
        raise DataError(probabilities, "not found",
                        fix="run `funduskit predict --save-probabilities` on the validation photographs first")
    cases = []
    for sample in read_dataset(gt_dir, gt_format):
        stem = image_stem(sample.image_id)
        disc_path, cup_path = (probability_path(pred_dir, stem, part) for part in ("disc", "cup"))
        if sample.disc_cup_mask_path is None or not (disc_path.is_file() and cup_path.is_file()):
            continue
        disc = np.load(disc_path).astype(np.float32)
        cup = np.load(cup_path).astype(np.float32)
        reference = load_disc_cup_mask(sample)
        reference = cv2.resize(reference, (disc.shape[1], disc.shape[0]), interpolation=cv2.INTER_NEAREST)
        record = load_result(pred_dir, sample.image_id)
        classifier = None
        if record is not None and record.glaucoma_probability is not None:
            classifier = (record.classifier_probability if record.classifier_probability is not None
                          else record.glaucoma_probability)
        cases.append(ValidationCase(stem, disc, cup, reference, sample.label, classifier))
    if not cases:
        raise DataError(pred_dir, f"no saved probability maps match a reference disc/cup mask of {gt_dir}",
                        fix="predict the same photographs as the ground truth with --save-probabilities")
    return cases


def choose_thresholds(cases: Sequence[ValidationCase], grid: Sequence[float] = DEFAULT_GRID) -> TuneResult:
    """Pick the disc, then the cup threshold on ``cases`` (see the module doc)."""
    if not cases:
        raise FunduskitError("no validation cases to tune on")
    disc_curve = []
    for threshold in grid:
        disc_dice = float(np.mean([dice(clean_mask(c.disc_probability, threshold), disc_of(c.reference)) for c in cases]))
        disc_curve.append({"threshold": threshold, "disc_dice": disc_dice})
    disc_threshold = _best(disc_curve, "disc_dice")
    discs = [clean_mask(c.disc_probability, disc_threshold) for c in cases]
    cup_curve = [_cup_scores(cases, discs, threshold) for threshold in grid]
    for row in cup_curve:
        row["score"] = row["cup_dice"] - row["vcdr_error"]
    cup_threshold = _best(cup_curve, "score")
    chosen = next(row for row in cup_curve if row["threshold"] == cup_threshold)
    default_discs = [clean_mask(c.disc_probability, 0.5) for c in cases]
    default = _cup_scores(cases, default_discs, 0.5)
    default["disc_dice"] = float(np.mean([dice(d, disc_of(c.reference)) for d, c in zip(default_discs, cases)]))
    combiner, aurocs, note = choose_glaucoma_combiner(cases, discs, cup_threshold)
    return TuneResult(
        thresholds=Thresholds(disc=disc_threshold, cup=cup_threshold, glaucoma=combiner),
        images=len(cases),
        disc_dice=max(row["disc_dice"] for row in disc_curve),
        cup_dice=chosen["cup_dice"],
        vcdr_error=chosen["vcdr_error"],
        default_scores=default,
        disc_curve=disc_curve,
        cup_curve=cup_curve,
        glaucoma_auroc=aurocs,
        glaucoma_note=note,
    )


def choose_glaucoma_combiner(cases: Sequence[ValidationCase], discs: Sequence[np.ndarray], cup_threshold: float
                             ) -> tuple[GlaucomaCombiner | None, dict[str, float], str]:
    """The combiner fitted on the labelled cases (vCDR at the chosen thresholds), the in-sample
    AUROC of the classifier, the vCDR and the combination, and why no combiner was fitted if none was."""
    labelled = [(case, disc) for case, disc in zip(cases, discs)
                if case.label is not None and case.classifier_probability is not None]
    labels = [int(case.label) for case, _ in labelled]  # type: ignore[arg-type]
    classifier = [float(case.classifier_probability) for case, _ in labelled]  # type: ignore[arg-type]
    vcdrs = [vertical_cdr(merge_disc_cup(disc, clean_mask(case.cup_probability, cup_threshold)))
             for case, disc in labelled]
    try:
        combiner = fit_combiner(classifier, vcdrs, labels)
    except FunduskitError as error:  # too few photographs of a class
        return None, {}, f"no glaucoma combiner: {error}"
    combined = [combiner.probability(p, v) for p, v in zip(classifier, vcdrs)]
    aurocs = {"classifier": auroc(labels, classifier), "vcdr": auroc(labels, vcdrs), "combined": auroc(labels, combined)}
    return combiner, {key: float(value) for key, value in aurocs.items()}, ""


def _cup_scores(cases: Sequence[ValidationCase], discs: Sequence[np.ndarray], threshold: float) -> dict[str, float]:
    cup_dice, vcdr_error = [], []
    for case, disc in zip(cases, discs):
        merged = merge_disc_cup(disc, clean_mask(case.cup_probability, threshold))
        cup_dice.append(dice(cup_of(merged), cup_of(case.reference)))
        vcdr_error.append(abs(vertical_cdr(merged) - vertical_cdr(case.reference)))
    return {"threshold": threshold, "cup_dice": float(np.mean(cup_dice)), "vcdr_error": float(np.mean(vcdr_error))}


def _best(curve: Sequence[dict[str, float]], key: str) -> float:
    """The threshold of the highest ``key``; ties to the one closest to 0.5."""
    best = max(curve, key=lambda row: (round(row[key], 12), -abs(row["threshold"] - 0.5)))
    return float(best["threshold"])


def thresholds_destination(pred_dir: str | Path, out: str | Path | None) -> Path:
    """Where ``thresholds.json`` goes: ``out`` (a file, or a folder to hold it), else the
    ``--models`` folder recorded in ``pred_dir/predict.json``."""
    if out is not None:
        out = Path(out)
        return out / THRESHOLDS_FILE if out.is_dir() or not out.suffix else out
    record = Path(pred_dir) / RUN_RECORD
    try:
        models_dir = json.loads(record.read_text(encoding="utf-8"))["models_dir"]
    except (OSError, ValueError, KeyError) as error:
        raise DataError(record, f"cannot tell which models folder the predictions came from ({error})",
                        fix="pass --out MODELS_DIR (or a path to thresholds.json)") from error
    if models_dir is None:  # the starter models alone: never write into the installed package
        raise DataError(record, "the predictions came from the starter models alone, which are not tuned in place",
                        fix="pass --out DIR and predict with --models DIR (a copy of the starter set, or your runs)")
    return Path(models_dir) / THRESHOLDS_FILE


def tune(
    pred_dir: str | Path, gt_dir: str | Path, *, out: str | Path | None = None, gt_format: str | None = None
) -> tuple[TuneResult, Path]:
    """Choose the thresholds on ``pred_dir``'s saved maps against ``gt_dir`` and write them.

    Returns:
        The result and the path of the ``thresholds.json`` written.
    """
    destination = thresholds_destination(pred_dir, out)
    result = choose_thresholds(load_validation_cases(pred_dir, gt_dir, gt_format=gt_format))
    record = {**result.as_dict(), "pred": str(Path(pred_dir).resolve()), "gt": str(Path(gt_dir).resolve()),
              "criterion": "disc: max mean Dice; cup: max mean cup Dice - mean vCDR error"}
    atomic_write_text(destination, json.dumps(record, indent=1) + "\n")
    return result, destination
